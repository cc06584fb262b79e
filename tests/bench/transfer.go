package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// measureTransfer: promote of the push tree's images (every platform,
// one referrer per platform manifest) into docker-registry against
// `skopeo copy --all` of the same images (which leaves the referrers
// behind), and export of them to one bundle against `skopeo copy --all`
// to one oci-archive per image.
func (b *bench) measureTransfer() error {
	src, err := b.newOurs("transfer-src", map[string]string{
		"DEPLOY_DIR_IMAGES":               b.tree.Root,
		"CONTAINER_REGISTRY_TAG_STRATEGY": "latest",
	})
	if err != nil {
		return err
	}
	if _, err := src.Start(b.ctx); err != nil {
		return err
	}
	if _, err := src.Run(b.ctx, "push"); err != nil {
		return err
	}
	refs, err := attachReferrers(src.Addr(), b.tree.Names)
	if err != nil {
		return err
	}
	dst, err := b.newDocker("transfer-dst")
	if err != nil {
		return err
	}
	if _, err := dst.Start(b.ctx); err != nil {
		return err
	}
	promote := append([]string{"promote"}, b.tree.Names...)
	promote = append(promote, "--to", dst.Addr()+"/prod", "--dest-insecure")
	var ours, base, again []time.Duration
	for i := range b.runs {
		b.logf("promote run %d/%d", i+1, b.runs)
		err := orderFor(i, func() error {
			if err := resetStorage(b.ctx, dst); err != nil {
				return err
			}
			r, err := src.Run(b.ctx, promote...)
			if err != nil {
				return err
			}
			ours = append(ours, r.Elapsed)
			if r, err = src.Run(b.ctx, promote...); err != nil {
				return err
			}
			again = append(again, r.Elapsed)
			return nil
		}, func() error {
			if err := resetStorage(b.ctx, dst); err != nil {
				return err
			}
			start := time.Now()
			for _, n := range b.tree.Names {
				if _, err := run(b.ctx, nil, "skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
					fmt.Sprintf("docker://%s/yocto/%s:latest", src.Addr(), n), fmt.Sprintf("docker://%s/prod/%s:latest", dst.Addr(), n)); err != nil {
					return err
				}
			}
			base = append(base, time.Since(start))
			return nil
		})
		if err != nil {
			return err
		}
	}
	what := fmt.Sprintf("%d images × %d platforms + %d referrers", len(b.tree.Names), len(machines), refs)
	tp := func(ds []time.Duration) samples { return throughput(b.tree.Bytes, ds) }
	r := seconds(base).median() / seconds(ours).median()
	b.add(row{Name: "promote into docker-registry (" + what + ")", Ours: tp(ours), Base: tp(base), BaseName: "skopeo copy --all per image, referrers left behind", Unit: unitMBps,
		Ratio: r, RatioText: "faster", Goal: "≥ 1.5×", Met: boolp(r >= 1.5)})
	b.add(row{Name: "  promote again (nothing to send: 0 bytes)", Ours: seconds(again), Unit: unitSeconds, Ratio: math.NaN(), Goal: "report"})

	out := filepath.Join(b.work, "bundles")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	export := append([]string{"export"}, b.tree.Names...)
	export = append(export, "--output", filepath.Join(out, "bundle.tar"))
	var exp, skopeoExp []time.Duration
	for i := range b.runs {
		b.logf("export run %d/%d", i+1, b.runs)
		err := orderFor(i, func() error {
			r, err := src.Run(b.ctx, export...)
			if err != nil {
				return err
			}
			exp = append(exp, r.Elapsed)
			return os.Remove(filepath.Join(out, "bundle.tar"))
		}, func() error {
			start := time.Now()
			for _, n := range b.tree.Names {
				if _, err := run(b.ctx, nil, "skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false",
					fmt.Sprintf("docker://%s/yocto/%s:latest", src.Addr(), n), fmt.Sprintf("oci-archive:%s:%s", filepath.Join(out, n+".tar"), n)); err != nil {
					return err
				}
			}
			skopeoExp = append(skopeoExp, time.Since(start))
			for _, n := range b.tree.Names {
				os.Remove(filepath.Join(out, n+".tar"))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	r = seconds(skopeoExp).median() / seconds(exp).median()
	b.add(row{Name: "export to one bundle (" + what + ")", Ours: tp(exp), Base: tp(skopeoExp), BaseName: "skopeo copy --all to an oci-archive per image, referrers left behind", Unit: unitMBps,
		Ratio: r, RatioText: "faster", Goal: "report"})
	src.Stop()
	return dst.Stop()
}

// attachReferrers gives every platform manifest of each image's latest
// tag at addr one small artifact whose subject it is, as push attaches an
// SBOM, and returns how many it wrote.
func attachReferrers(addr string, names []string) (int, error) {
	n := 0
	for _, img := range names {
		repo, err := name.NewRepository(addr+"/yocto/"+img, name.Insecure)
		if err != nil {
			return 0, err
		}
		idx, err := remote.Index(repo.Tag("latest"))
		if err != nil {
			return 0, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return 0, err
		}
		for _, m := range im.Manifests {
			doc, err := random.Image(16<<10, 1)
			if err != nil {
				return 0, err
			}
			art := mutate.Subject(mutate.MediaType(doc, types.OCIManifestSchema1), v1.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}).(v1.Image)
			d, err := art.Digest()
			if err != nil {
				return 0, err
			}
			if err := remote.Write(repo.Digest(d.String()), art); err != nil {
				return 0, err
			}
			n++
		}
	}
	return n, nil
}
