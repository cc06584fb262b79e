package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// The growth test of issue 20: a build host pushes after every build with
// a retention policy of the newest 5 and must stay at a bounded size.

// growthMachine is one machine of the growth test's builds.
type growthMachine struct{ machine, arch, goarch string }

var growthMachines = []growthMachine{{"qemux86-64", "x86_64", "amd64"}, {"qemuarm64", "aarch64", "arm64"}}

// growthDocs are the documents push attaches to every platform manifest:
// artifactType -> the suffix of the file beside the build.
var growthDocs = map[string]string{spdxType: ".spdx.json", cveType: ".sbom-cve-check.spdx.json", manifestType: ".manifest"}

// blobSet is a set of blobs: digest -> size.
type blobSet map[string]int64

func (s blobSet) bytes() int64 {
	var n int64
	for _, size := range s {
		n += size
	}
	return n
}

// add records a blob, failing on a size that differs from an earlier one.
func (s blobSet) add(t *testing.T, digest string, size int64) {
	t.Helper()
	if old, ok := s[digest]; ok && old != size {
		t.Fatalf("blob %s: size %d, was %d", digest, size, old)
	}
	s[digest] = size
}

// storedBlobs is every blob of e's filesystem storage: digest -> size.
func storedBlobs(t *testing.T, e *Env) blobSet {
	t.Helper()
	root := filepath.Join(e.Storage, "data", "docker", "registry", "v2", "blobs", "sha256")
	out := blobSet{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "data" {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out["sha256:"+filepath.Base(filepath.Dir(p))] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// getDigest GETs a manifest or blob of repo by digest (path kind "manifests"
// or "blobs"), checks that it hashes to its digest and decodes it into v
// (when not nil); it returns the bytes.
func (r *regHTTP) getDigest(t *testing.T, repo, kind, digest string, v any) []byte {
	t.Helper()
	resp, data := r.do(t, http.MethodGet, "/v2/"+repo+"/"+kind+"/"+digest, nil, "", false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s %s@%s: %s", kind, repo, digest, resp.Status)
	}
	if got := digestOf(data); got != digest {
		t.Fatalf("%s %s@%s hashes to %s", kind, repo, digest, got)
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s@%s: %v\n%s", repo, digest, err, data)
		}
	}
	return data
}

// growthBuild walks the build of image under tag in the registry: the
// index (both platforms, each the manifest of the deploy layout of that
// build), every platform manifest with its config and layers, and the
// three documents listed for each platform by the referrers API, each
// with the bytes of the file beside the build. It returns the index
// digest and every blob the build uses.
func growthBuild(t *testing.T, e *Env, h *regHTTP, root, image, tag string, builds map[string]sample.Build) (string, blobSet) {
	t.Helper()
	repo := "yocto/" + image
	set := blobSet{}
	resp, raw := h.do(t, http.MethodGet, "/v2/"+repo+"/manifests/"+tag, nil, "", false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s:%s: %s", repo, tag, resp.Status)
	}
	index := digestOf(raw)
	set.add(t, index, int64(len(raw)))
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil || len(im.Manifests) != len(growthMachines) {
		t.Fatalf("%s:%s: %v, want an index of %d platforms:\n%s", repo, tag, err, len(growthMachines), raw)
	}
	for _, m := range im.Manifests {
		var gm *growthMachine
		for i := range growthMachines {
			if m.Platform != nil && m.Platform.Architecture == growthMachines[i].goarch {
				gm = &growthMachines[i]
			}
		}
		if gm == nil {
			t.Fatalf("%s:%s: unexpected platform %v", repo, tag, m.Platform)
		}
		b := builds[gm.machine]
		if want := layoutManifest(t, filepath.Join(root, gm.machine, b.DirName())); m.Digest.String() != want {
			t.Fatalf("%s:%s %s is %s, the deploy layout of %s has %s", repo, tag, gm.goarch, m.Digest, b.DirName(), want)
		}
		var man v1.Manifest
		raw := h.getDigest(t, repo, "manifests", m.Digest.String(), &man)
		set.add(t, m.Digest.String(), int64(len(raw)))
		for _, d := range append([]v1.Descriptor{man.Config}, man.Layers...) {
			set.add(t, d.Digest.String(), d.Size)
		}
		refs, _ := h.referrers(t, repo, m.Digest, "")
		found := map[string]bool{}
		for _, ref := range refs.Manifests {
			suffix, ok := growthDocs[ref.ArtifactType]
			if !ok || found[ref.ArtifactType] {
				t.Fatalf("%s:%s %s: unexpected referrer %s (%s)", repo, tag, gm.goarch, ref.Digest, ref.ArtifactType)
			}
			found[ref.ArtifactType] = true
			var art v1.Manifest
			raw := h.getDigest(t, repo, "manifests", ref.Digest.String(), &art)
			if art.Subject == nil || art.Subject.Digest != m.Digest || len(art.Layers) != 1 {
				t.Fatalf("%s: referrer %s: subject %v, %d layers", repo, ref.Digest, art.Subject, len(art.Layers))
			}
			set.add(t, ref.Digest.String(), int64(len(raw)))
			set.add(t, art.Config.Digest.String(), art.Config.Size)
			set.add(t, art.Layers[0].Digest.String(), art.Layers[0].Size)
			doc := h.getDigest(t, repo, "blobs", art.Layers[0].Digest.String(), nil)
			if want := deployDoc(t, root, gm.machine, b.ImageName(), suffix); !bytes.Equal(doc, want) {
				t.Fatalf("%s:%s %s: the %s document is not %s%s", repo, tag, gm.goarch, ref.ArtifactType, b.ImageName(), suffix)
			}
		}
		if len(found) != len(growthDocs) {
			t.Fatalf("%s:%s %s: referrers %v, want the %d documents", repo, tag, gm.goarch, found, len(growthDocs))
		}
	}
	return index, set
}

var (
	pushedTagRe   = regexp.MustCompile(`/yocto/[a-z-]+:(\d{8}-\d{6})`)
	uploadedAllRe = regexp.MustCompile(`uploaded (\d+) bytes`)
)

// TestGrowthBounded: 30 successive builds of two images on two machines
// (qemux86-64/x86_64, qemuarm64/aarch64), each with new layer content
// (a 4 KiB layer of its own per image and machine beside the shared base
// layer) and new documents, pushed one after another through the helper
// with the default strategy (timestamp latest) and the policy of the
// newest 5 applied on every push (CONTAINER_REGISTRY_RETENTION_KEEP=5,
// CONTAINER_REGISTRY_RETENTION_ON_PUSH=1 baked into the helper).
//
// Afterwards each image has exactly the 5 newest timestamp tags and
// latest (on the newest); the 5 newest pull with skopeo (every platform)
// and list their three documents through the referrers API, with the
// bytes written beside the build; the stored blobs are exactly the blobs
// of the 5 newest builds (their own and the ones they share with older
// builds: the base layers, the empty config of the documents): the bound
// asserted is storage <= bytes of that set, with no slack, and nothing of
// that set missing; verify is clean with no unreferenced blobs and a
// prune --keep 5 dry run finds nothing to remove.
func TestGrowthBounded(t *testing.T) {
	testtool.Need(t, "skopeo")
	const (
		builds = 30
		keep   = 5
		filler = 4096
	)
	images := []string{"app-server", "container-base"}
	begin := time.Now()
	root := filepath.Join(t.TempDir(), "deploy", "images")
	e := NewEnv(t, map[string]string{
		"DEPLOY_DIR_IMAGES":                    root,
		"CONTAINER_REGISTRY_TAG_STRATEGY":      "timestamp latest",
		"CONTAINER_REGISTRY_RETENTION_KEEP":    strconv.Itoa(keep),
		"CONTAINER_REGISTRY_RETENTION_ON_PUSH": "1",
	})
	e.mustRun(t, 0, "start")
	h := e.regHTTP(t)

	type build struct {
		tag    string
		index  map[string]string // image -> index digest
		blobs  blobSet           // every blob of the build (both images)
		specs  map[string]map[string]sample.Build
		pushed int64 // image blob bytes the push summary reports uploading
	}
	var done []build
	seen := blobSet{} // every blob any build used: storage without a policy
	first := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	var pushTime time.Duration
	for n := 1; n <= builds; n++ {
		stamp := first.AddDate(0, 0, n).Add(time.Duration(n) * time.Minute).Format("20060102150405")
		b := build{index: map[string]string{}, blobs: blobSet{}, specs: map[string]map[string]sample.Build{}}
		var tree []sample.Build
		for _, img := range images {
			b.specs[img] = map[string]sample.Build{}
			for _, m := range growthMachines {
				sb := sample.Build{Spec: sample.Spec{Name: img, Machine: m.machine, Arch: m.arch, Stamp: stamp, Filler: filler}, Latest: true}
				b.specs[img][m.machine] = sb
				tree = append(tree, sb)
			}
		}
		if _, err := sample.WriteTree(root, tree); err != nil {
			t.Fatal(err)
		}
		// Every push gets its own timestamp tag: the next second.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		start := time.Now()
		r := e.mustRun(t, 0, "push")
		pushTime += time.Since(start)
		tags := map[string]bool{}
		for _, m := range pushedTagRe.FindAllStringSubmatch(r.Stdout, -1) {
			tags[m[1]] = true
		}
		if len(tags) != 1 {
			t.Fatalf("build %d: want one timestamp tag in the push output, got %v:\n%s", n, tags, r.Stdout)
		}
		for tag := range tags {
			b.tag = tag
		}
		if len(done) > 0 && b.tag <= done[len(done)-1].tag {
			t.Fatalf("build %d: tag %s not after %s", n, b.tag, done[len(done)-1].tag)
		}
		for _, m := range uploadedAllRe.FindAllStringSubmatch(r.Stdout, -1) {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			b.pushed += v
		}
		if want := fmt.Sprintf("Removed %d tag(s) of %d image(s)", len(images), len(images)); n > keep && !strings.Contains(r.Stdout, want) {
			t.Fatalf("build %d: push did not prune (%q):\n%s", n, want, r.Stdout)
		}
		if n <= keep && strings.Contains(r.Stdout, "Removed ") {
			t.Fatalf("build %d: push pruned within the newest %d:\n%s", n, keep, r.Stdout)
		}
		for _, img := range images {
			d, set := growthBuild(t, e, h, root, img, b.tag, b.specs[img])
			b.index[img] = d
			for k, v := range set {
				b.blobs.add(t, k, v)
			}
		}
		var fresh int64
		for k, v := range b.blobs {
			if _, ok := seen[k]; !ok {
				fresh += v
			}
			seen.add(t, k, v)
		}
		done = append(done, b)
		if n == 1 || n%10 == 0 || n == keep+1 {
			t.Logf("build %d (%s, tag %s): %d blobs, %d bytes new, push uploaded %d bytes; storage %d bytes; %s",
				n, stamp, b.tag, len(b.blobs), fresh, b.pushed, storedBlobs(t, e).bytes(), time.Since(begin).Round(time.Millisecond))
		}
	}

	kept, gone := done[len(done)-keep:], done[:len(done)-keep]

	// Tags: the 5 newest timestamps and latest on the newest.
	for _, img := range images {
		want := []string{"latest"}
		for _, b := range kept {
			want = append(want, b.tag)
		}
		sort.Strings(want)
		if got := listTags(t, e, img); !slices.Equal(got, want) {
			t.Errorf("%s: tags %v, want %v", img, got, want)
		}
		if d, _ := growthBuild(t, e, h, root, img, "latest", kept[len(kept)-1].specs[img]); d != kept[len(kept)-1].index[img] {
			t.Errorf("%s:latest is %s, the newest build %s", img, d, kept[len(kept)-1].index[img])
		}
	}

	// The 5 newest pull completely with skopeo, every platform, and still
	// have their documents; together they use the live set.
	live := blobSet{}
	for _, b := range kept {
		for _, img := range images {
			ref := e.URL + "/yocto/" + img + ":" + b.tag
			dest := filepath.Join(t.TempDir(), "oci")
			if out, err := exec.Command("skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+ref, "oci:"+dest+":x").CombinedOutput(); err != nil {
				t.Fatalf("skopeo copy --all %s: %v\n%s", ref, err, out)
			}
			d, set := growthBuild(t, e, h, root, img, b.tag, b.specs[img])
			if d != b.index[img] {
				t.Errorf("%s:%s is %s now, was %s", img, b.tag, d, b.index[img])
			}
			for k, v := range set {
				live.add(t, k, v)
			}
		}
	}

	// Older builds are gone: their tags, their indexes and their platform
	// manifests (and with them their documents).
	for _, b := range gone {
		for _, img := range images {
			for _, ref := range []string{b.tag, b.index[img]} {
				if resp, _ := h.do(t, http.MethodHead, "/v2/yocto/"+img+"/manifests/"+ref, nil, "", false); resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s@%s of pruned build %s: %s, want 404", img, ref, b.tag, resp.Status)
				}
			}
		}
	}

	// Storage: exactly the live set. own: blobs only one of the kept
	// builds uses; shared: blobs kept builds share with each other or with
	// pruned builds (base layers, the empty config).
	users := map[string]int{}
	for _, b := range done {
		for k := range b.blobs {
			users[k]++
		}
	}
	var own, shared int64
	for k, v := range live {
		if users[k] == 1 {
			own += v
		} else {
			shared += v
		}
	}
	stored := storedBlobs(t, e)
	for k, v := range live {
		if got, ok := stored[k]; !ok || got != v {
			t.Errorf("live blob %s (%d bytes) is not stored (%d, %v)", k, v, got, ok)
		}
	}
	for k, v := range stored {
		if _, ok := live[k]; !ok {
			t.Errorf("blob %s (%d bytes) is stored but no kept build uses it", k, v)
		}
	}
	bound := live.bytes()
	storage, total := stored.bytes(), seen.bytes()
	var pushedTotal int64
	for _, b := range done {
		pushedTotal += b.pushed
	}
	t.Logf("storage after %d builds: %d bytes in %d blobs with keep %d, %d bytes in %d blobs pushed in total (what storage holds without a policy); data directory %d bytes of files; the push summaries counted %d bytes of image blobs uploaded (manifests and documents not counted)",
		builds, storage, len(stored), keep, total, len(seen), dirSize(t, filepath.Join(e.Storage, "data")), pushedTotal)
	t.Logf("bound: %d bytes = the %d newest builds' own blobs %d + shared blobs %d (no slack); storage is %.1f%% of the unpruned total",
		bound, keep, own, shared, 100*float64(storage)/float64(total))
	if storage > bound {
		t.Errorf("storage %d bytes exceeds the bound %d", storage, bound)
	}
	if storage >= total {
		t.Errorf("storage %d bytes is not below the %d bytes of all builds", storage, total)
	}

	r := e.mustRun(t, 0, "verify")
	wantOut(t, r, "verify", "no unreferenced blobs", "OK: no problems found")

	// Nothing more for the same policy to do; a tighter one would remove
	// two builds per image (the dry run the closing note quotes).
	before := e.snapshot(t)
	r = e.mustRun(t, 0, "prune", "--keep", strconv.Itoa(keep))
	wantOut(t, r, "prune --keep 5 dry run", "Nothing to prune")
	if strings.Contains(r.Stdout, "remove ") {
		t.Errorf("prune --keep %d dry run would remove tags:\n%s", keep, r.Stdout)
	}
	r = e.mustRun(t, 0, "prune", "--keep", "3")
	t.Logf("prune --keep 3 (dry run):\n%s", r.Stdout)
	wantOut(t, r, "prune --keep 3 dry run", "remove "+kept[0].tag, "remove "+kept[1].tag, "Dry run only: nothing was removed")
	sameTags(t, "after the dry runs", before, e.snapshot(t))
	if after := storedBlobs(t, e); after.bytes() != storage || len(after) != len(stored) {
		t.Errorf("the dry runs changed storage: %d bytes in %d blobs, was %d in %d", after.bytes(), len(after), storage, len(stored))
	}
	t.Logf("%d pushes (each with its prune) took %s, the whole test %s", builds, pushTime.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}
