package push

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// artifactsOf puts n small artifacts whose subject is subject into repo
// and returns their descriptors as a referrers list carries them; with
// viaGGCR they are written by go-containerregistry's remote.Write, which
// keeps the referrers tag itself.
func artifactsOf(t *testing.T, tg *registry.Target, repoName string, subject v1.Descriptor, n int, viaGGCR bool) []v1.Descriptor {
	t.Helper()
	repo, err := tg.Repo(repoName)
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Descriptor
	var wg sync.WaitGroup
	errs := make([]error, n)
	imgs := make([]v1.Image, n)
	for i := range n {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, "application/vnd.oci.empty.v1+json")
		img, err = mutate.AppendLayers(img, static.NewLayer([]byte(fmt.Sprintf("doc %d", i)), "application/spdx+json"))
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.Subject(img, subject).(v1.Image)
		imgs[i] = img
		d, _ := img.Digest()
		size, _ := img.Size()
		out = append(out, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: size, ArtifactType: "application/vnd.oci.empty.v1+json"})
	}
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := tg.Options(context.Background())
			if !viaGGCR {
				// Blobs and manifest only: the referrers tag is ours to
				// write (ggcr refuses to keep it, after the PUT).
				opts = append(opts, remote.WithReferrersTagFallback(false))
			}
			errs[i] = remote.Write(repo.Digest(out[i].Digest.String()), img, opts...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !viaGGCR && !strings.Contains(err.Error(), "tag fallback is disabled") {
			t.Fatal(err)
		}
	}
	return out
}

// Concurrent pushers merging into one referrers tag (no lock shared: each
// has its own storage, as pushes from several hosts) lose no entry;
// go-containerregistry's own fallback on the same registry is measured
// alongside for the report (it reads, appends and writes once).
func TestMergeReferrersConcurrent(t *testing.T) {
	reg := testreg.New(t)
	const pushers, rounds = 8, 6
	var ggcrLost int
	for round := range rounds {
		subjectImg := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		subjectImg, _ = mutate.Config(subjectImg, v1.Config{Cmd: []string{fmt.Sprint(round)}})
		c := testConfig(t, reg.Host, t.TempDir())
		tg := target(t, c)
		repo, _ := tg.Repo("racy")
		d, _ := subjectImg.Digest()
		if err := remote.Write(repo.Digest(d.String()), subjectImg, tg.Options(context.Background())...); err != nil {
			t.Fatal(err)
		}
		size, _ := subjectImg.Size()
		subject := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: size}
		wants := artifactsOf(t, tg, "racy", subject, pushers, false)

		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, pushers)
		for i := range pushers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var rec events.Recorder
				own := target(t, testConfig(t, reg.Host, t.TempDir()))
				o := Options{Events: &rec}
				o.defaults()
				p, err := newPushRun(context.Background(), own, o, &TagSet{}, &Summary{})
				if err != nil {
					errs[i] = err
					return
				}
				tag := registry.FallbackTag(repo, d)
				<-start
				if errs[i] = p.mergeReferrers(context.Background(), tag, wants[i:i+1]); errs[i] != nil {
					return
				}
				p.fallbacks = append(p.fallbacks, written{group: "racy", ref: tag, wants: wants[i : i+1]})
				p.verifyTags(context.Background())
				if len(p.sum.Failed) > 0 {
					errs[i] = fmt.Errorf("verify: %v", rec.Events())
				}
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d pusher %d: %v", round, i, err)
			}
		}
		im, _, err := tg.FallbackIndex(context.Background(), repo, d)
		if err != nil {
			t.Fatal(err)
		}
		if !containsAll(im.Manifests, wants) || len(im.Manifests) != pushers {
			t.Fatalf("round %d: the referrers tag lists %d of %d artifacts", round, len(im.Manifests), pushers)
		}

		// The same race through go-containerregistry's remote.Write.
		other := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		other, _ = mutate.Config(other, v1.Config{Cmd: []string{"ggcr", fmt.Sprint(round)}})
		od, _ := other.Digest()
		if err := remote.Write(repo.Digest(od.String()), other, tg.Options(context.Background())...); err != nil {
			t.Fatal(err)
		}
		osize, _ := other.Size()
		ggcr := artifactsOf(t, tg, "racy", v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: od, Size: osize}, pushers, true)
		oim, _, err := tg.FallbackIndex(context.Background(), repo, od)
		if err != nil {
			t.Fatal(err)
		}
		ggcrLost += len(ggcr) - len(oim.Manifests)
	}
	t.Logf("go-containerregistry's remote.Write fallback lost %d of %d referrers entries over %d rounds of %d concurrent writers", ggcrLost, rounds*pushers, rounds, pushers)
}
