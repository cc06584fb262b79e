package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The scale tree: many images with small layers, written once; the trees
// of 10, 100 and 1,000 images are directories of links into it.
const (
	scaleImages    = 1000
	scaleLayers    = 3
	scaleLayerSize = 10 << 10
	smallImages    = 100 // the many-small-images row
)

var scaleSizes = []int{10, 100, scaleImages}

// scaleTree writes the scale tree (once) and returns the tree of its
// first n images: per machine one <name>-latest-oci link per image, to
// the layout in the full tree, which is what a deploy directory's links
// are.
func (b *bench) scaleTree(n int) (*tree, error) {
	if b.scale == nil {
		b.logf("writing the scale tree (%d machines × %d images × %d layers of %s)", len(machines), scaleImages, scaleLayers, sizeText(scaleLayerSize))
		t, err := writeTree(filepath.Join(b.work, "scale-images"), "small", scaleImages, scaleLayers, scaleLayerSize, 7_000_000)
		if err != nil {
			return nil, err
		}
		b.scale = t
	}
	root := filepath.Join(b.work, fmt.Sprintf("scale-%d", n))
	sub := &tree{Root: root, Names: b.scale.Names[:n]}
	keep := map[string]bool{}
	for _, name := range sub.Names {
		keep[name] = true
	}
	per := len(b.scale.Blobs) / len(b.scale.Images) // blobs per image build
	for i, im := range b.scale.Images {
		if !keep[im.Name] {
			continue
		}
		sub.Images = append(sub.Images, im)
		for _, bl := range b.scale.Blobs[i*per : (i+1)*per] {
			sub.Blobs = append(sub.Blobs, bl)
			sub.Bytes += bl.Size
		}
		link := filepath.Join(root, im.Machine.Name, im.Name+"-latest-oci")
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(im.Dir, link); err != nil {
			return nil, err
		}
	}
	return sub, nil
}

// measureScale: cold push and re-push of 10, 100 and 1,000 images × 2
// machines, per image, with the cold push's peak RSS; and how flat the
// re-push per image stays from 10 to 1,000.
func (b *bench) measureScale() error {
	o, err := b.newOurs("scale", map[string]string{"CONTAINER_REGISTRY_TAG_STRATEGY": "timestamp latest"})
	if err != nil {
		return err
	}
	rePer := map[int]samples{}
	for _, n := range scaleSizes {
		t, err := b.scaleTree(n)
		if err != nil {
			return err
		}
		env := append(append([]string{}, o.env...), "DEPLOY_DIR_IMAGES="+t.Root)
		runs := b.runs
		if n >= scaleImages {
			runs = min(runs, 3)
		}
		var cold, re, rss samples
		for i := range runs {
			b.logf("scale %d images, run %d/%d", n, i+1, runs)
			if err := resetStorage(b.ctx, o); err != nil {
				return err
			}
			r, err := run(b.ctx, env, "/usr/bin/time", "-f", "maxrss-kib=%M", o.script, "push")
			if err != nil {
				return err
			}
			if up := uploaded(r.Stdout + r.Stderr); up < t.Bytes {
				return fmt.Errorf("cold push of %d images uploaded %d bytes, want at least %d:\n%s", n, up, t.Bytes, tail(r.Stdout+r.Stderr))
			}
			m := maxRSSRE.FindStringSubmatch(r.Stderr)
			if m == nil {
				return fmt.Errorf("no maxrss-kib= line from /usr/bin/time:\n%s", tail(r.Stderr))
			}
			kib, _ := strconv.ParseInt(m[1], 10, 64)
			rss = append(rss, float64(kib)/float64(n))
			cold = append(cold, r.Elapsed.Seconds()/float64(n))
			// A re-push comes later than its build's push: in a second
			// of its own, so it writes its new timestamp tags.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			r, err = run(b.ctx, env, o.script, "push")
			if err != nil {
				return err
			}
			if up := uploaded(r.Stdout + r.Stderr); up != 0 {
				return fmt.Errorf("re-push of %d images uploaded %d bytes, want 0:\n%s", n, up, tail(r.Stdout+r.Stderr))
			}
			re = append(re, r.Elapsed.Seconds()/float64(n))
		}
		rePer[n] = re
		name := fmt.Sprintf("scale: %s images × %d machines (%d layers of %s), cold push per image", thousands(n), len(machines), scaleLayers, sizeText(scaleLayerSize))
		b.add(row{Name: name, Ours: cold, Unit: unitSeconds, Ratio: math.NaN(), Goal: "report"})
		ratio := re.median() / cold.median()
		b.add(row{Name: "  re-push per image (unchanged, new timestamp tags)", Ours: re, Base: cold, BaseName: "cold push per image", Unit: unitSeconds,
			Ratio: ratio, RatioText: "of cold", Goal: "report"})
		b.add(row{Name: "  cold push peak RSS per image", Ours: rss, Unit: unitKiB, Ratio: math.NaN(), Goal: "report"})
	}
	lo, hi := rePer[scaleSizes[0]], rePer[scaleImages]
	ratio := hi.median() / lo.median()
	b.add(row{Name: fmt.Sprintf("re-push per image at %s images vs at %d (flat per image)", thousands(scaleImages), scaleSizes[0]), Ours: hi, Base: lo,
		BaseName: fmt.Sprintf("at %d images", scaleSizes[0]), Unit: unitSeconds, Ratio: ratio, RatioText: "of the cost at 10", Goal: "≤ 1.5×", Met: boolp(ratio <= 1.5)})
	return o.Stop()
}

// measureSmall: cold push of many small images against the fewest
// requests a client could send for them, with curl at push's parallelism.
func (b *bench) measureSmall() error {
	t, err := b.scaleTree(smallImages)
	if err != nil {
		return err
	}
	o, err := b.newOurs("small", map[string]string{"DEPLOY_DIR_IMAGES": t.Root, "CONTAINER_REGISTRY_TAG_STRATEGY": "timestamp latest"})
	if err != nil {
		return err
	}
	rr, err := b.rawRequests(t)
	if err != nil {
		return err
	}
	var ours, ceiling []time.Duration
	for i := range b.runs {
		b.logf("small images run %d/%d", i+1, b.runs)
		err := orderFor(i, func() error {
			if err := resetStorage(b.ctx, o); err != nil {
				return err
			}
			r, err := o.Run(b.ctx, "push")
			if err != nil {
				return err
			}
			if up := uploaded(r.Stdout + r.Stderr); up < t.Bytes {
				return fmt.Errorf("cold push uploaded %d bytes, want at least %d:\n%s", up, t.Bytes, tail(r.Stdout+r.Stderr))
			}
			ours = append(ours, r.Elapsed)
			return nil
		}, func() error {
			if err := resetStorage(b.ctx, o); err != nil {
				return err
			}
			d, err := rr.run(b, o.Addr())
			if err != nil {
				return err
			}
			ceiling = append(ceiling, d)
			return nil
		})
		if err != nil {
			return err
		}
	}
	ratio := seconds(ours).median() / seconds(ceiling).median()
	b.add(row{Name: fmt.Sprintf("many small images: cold push of %d images × %d machines (%d layers of %s)", smallImages, len(machines), scaleLayers, sizeText(scaleLayerSize)),
		Ours: seconds(ours), Base: seconds(ceiling), BaseName: "curl: POST + monolithic PUT per blob, manifest and index PUTs, 4 parallel", Unit: unitSeconds,
		Ratio: ratio, RatioText: "of the ceiling's time", Goal: "≤ 1.2×", Met: boolp(ratio <= 1.2)})
	return o.Stop()
}

// rawRequestPlan is what the raw-request ceiling sends: every blob of the
// tree (a session each, then its monolithic PUT), every manifest, and per
// image one index for each of two tags, as push's default strategy
// writes.
type rawRequestPlan struct {
	blobs     []rawBlob
	manifests []rawFile // PUT to /v2/<repo>/manifests/<digest>
	indexes   []rawFile // PUT to /v2/<repo>/manifests/<tag>
}

type rawBlob struct {
	repo string
	blobFile
}

type rawFile struct {
	repo, ref, path string
}

// rawRequests prepares the ceiling's requests for t (index JSON written
// here, not timed).
func (b *bench) rawRequests(t *tree) (*rawRequestPlan, error) {
	dir := filepath.Join(b.work, "raw-indexes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	plan := &rawRequestPlan{}
	entries := map[string][]v1.Descriptor{}
	per := len(t.Blobs) / len(t.Images)
	for i, im := range t.Images {
		repo := "yocto/" + im.Name
		for _, bl := range t.Blobs[i*per : (i+1)*per] {
			plan.blobs = append(plan.blobs, rawBlob{repo: repo, blobFile: bl})
		}
		data, err := os.ReadFile(filepath.Join(im.Dir, "index.json"))
		if err != nil {
			return nil, err
		}
		var idx v1.IndexManifest
		if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) != 1 {
			return nil, fmt.Errorf("%s/index.json: want one manifest (%v)", im.Dir, err)
		}
		md := idx.Manifests[0]
		plan.manifests = append(plan.manifests, rawFile{repo: repo, ref: md.Digest.String(), path: filepath.Join(im.Dir, "blobs", md.Digest.Algorithm, md.Digest.Hex)})
		entries[im.Name] = append(entries[im.Name], v1.Descriptor{MediaType: md.MediaType, Digest: md.Digest, Size: md.Size,
			Platform: &v1.Platform{OS: "linux", Architecture: im.Machine.Platform}})
	}
	for _, name := range t.Names {
		body, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries[name]})
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, body, 0o644); err != nil {
			return nil, err
		}
		for _, tag := range []string{shellTimestampTag, "latest"} {
			plan.indexes = append(plan.indexes, rawFile{repo: "yocto/" + name, ref: tag, path: p})
		}
	}
	return plan, nil
}

// run sends the plan to addr with curl, 4 requests in flight in each
// step: the upload sessions, the blob PUTs, the manifests, the indexes.
func (plan *rawRequestPlan) run(b *bench, addr string) (time.Duration, error) {
	start := time.Now()
	post := []string{"-sS", "--parallel", "--parallel-max", "4", "-X", "POST", "-w", "%header{location}\n"}
	for _, bl := range plan.blobs {
		post = append(post, "-o", "/dev/null", "http://"+addr+"/v2/"+bl.repo+"/blobs/uploads/")
	}
	r, err := run(b.ctx, nil, "curl", post...)
	if err != nil {
		return 0, err
	}
	// Sessions finish in any order: each is used for a blob of its
	// repository.
	sessions := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	for sc.Scan() {
		loc := strings.TrimSpace(sc.Text())
		if loc == "" {
			continue
		}
		u, err := url.Parse(loc)
		if err != nil {
			return 0, err
		}
		repo, _, ok := strings.Cut(strings.TrimPrefix(u.Path, "/v2/"), "/blobs/uploads/")
		if !ok {
			return 0, fmt.Errorf("upload location %q", loc)
		}
		sessions[repo] = append(sessions[repo], absLocation(addr, loc))
	}
	put := []string{"-sS", "--parallel", "--parallel-max", "4", "-H", "Expect:", "-H", "Content-Type: application/octet-stream", "-w", "%{http_code}\n"}
	for _, bl := range plan.blobs {
		locs := sessions[bl.repo]
		if len(locs) == 0 {
			return 0, fmt.Errorf("no upload session left for %s", bl.repo)
		}
		sessions[bl.repo] = locs[1:]
		put = append(put, "-T", bl.Path, "-o", "/dev/null", withDigest(locs[0], bl.Digest))
	}
	if err := curlAll(b, put, len(plan.blobs), "201"); err != nil {
		return 0, fmt.Errorf("blob PUTs: %w", err)
	}
	for _, step := range []struct {
		files []rawFile
		mt    types.MediaType
	}{{plan.manifests, types.OCIManifestSchema1}, {plan.indexes, types.OCIImageIndex}} {
		args := []string{"-sS", "--parallel", "--parallel-max", "4", "-H", "Expect:", "-H", "Content-Type: " + string(step.mt), "-w", "%{http_code}\n"}
		for _, f := range step.files {
			args = append(args, "-T", f.path, "-o", "/dev/null", "http://"+addr+"/v2/"+f.repo+"/manifests/"+f.ref)
		}
		if err := curlAll(b, args, len(step.files), "201"); err != nil {
			return 0, fmt.Errorf("%s PUTs: %w", step.mt, err)
		}
	}
	return time.Since(start), nil
}

// curlAll runs curl with args and checks that all n transfers answered
// code.
func curlAll(b *bench, args []string, n int, code string) error {
	r, err := run(b.ctx, nil, "curl", args...)
	if err != nil {
		return err
	}
	if got := strings.Count(r.Stdout, code); got != n {
		return fmt.Errorf("%d of %d answered %s: %q", got, n, code, tail(r.Stdout))
	}
	return nil
}

// scaleMethodNotes say what the scale and small rows measure.
var scaleMethodNotes = []string{
	fmt.Sprintf("scale: one tree of %s images × %d machines, %d layers of %s each (written once; the trees of 10, 100 and 1,000 images are directories of `<name>-latest-oci` links into it). Per size and run: storage emptied and the registry restarted, `container-registry.sh push` (strategy `timestamp latest`) timed under `/usr/bin/time` (peak RSS, divided by the number of images), then, from the start of the next second (so that the re-push writes its new timestamp tags, as a later re-push does), the same push again (0 bytes uploaded, checked). Per-image values are the whole command's time divided by the number of images; at 1,000 images at most 3 runs. The flatness row compares the re-push per image at 1,000 images with that at 10.", thousands(scaleImages), len(machines), scaleLayers, sizeText(scaleLayerSize)),
	fmt.Sprintf("small: the first %d images of the scale tree pushed cold with `container-registry.sh push` (strategy `timestamp latest`), against the fewest requests a client can send for the same content: curl with 4 transfers in flight (push's parallelism) in four steps, one process each: a POST per blob, a monolithic PUT with `?digest=` per blob, a PUT per manifest, a PUT per image and tag of its two-platform index (JSON prepared before timing). Both on an emptied, restarted registry, alternating which goes first.", smallImages),
}
