package labels

import (
	"archive/tar"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

var want = Labels{
	Revision: "8a3f2b1",
	RefName:  "master",
	Created:  "2026-01-12T20:32:24Z",
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// newLayout writes a single-image OCI layout as image-oci does: one
// manifest in index.json, tagged through the ref.name annotation. The image
// already carries a label of its own.
func newLayout(t *testing.T) (string, v1.Hash) {
	t.Helper()
	img := ociImage(t, 2)
	img, err := mutate.Config(img, v1.Config{Labels: map[string]string{"maintainer": "yocto"}, Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "container-base-latest-oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return dir, d
}

func blobs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, filepath.Base(p))
		}
		return err
	})
	sort.Strings(out)
	return out
}

// ociImage is a random image with OCI media types, as image-oci writes.
func ociImage(t *testing.T, layers int) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i := 0; i < layers; i++ {
		l, err := random.Layer(512, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

type inspect struct {
	Labels map[string]string
}

func TestApplyDirectory(t *testing.T) {
	testtool.Need(t, "skopeo")
	dir, old := newLayout(t)
	before := blobs(t, dir)

	rep, err := Apply(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rewritten) != 1 || rep.Rewritten[0].Old != old {
		t.Fatalf("report: %+v", rep)
	}
	// Old blobs stay (for gc); a new config and manifest blob appear.
	after := blobs(t, dir)
	if len(after) != len(before)+2 {
		t.Errorf("blobs: %d before, %d after; want two new", len(before), len(after))
	}
	for _, b := range before {
		if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", b)); err != nil {
			t.Errorf("old blob %s removed", b)
		}
	}
	// The descriptor keeps its tag annotation.
	p, _ := layout.FromPath(dir)
	ii, _ := p.ImageIndex()
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "latest" || im.Manifests[0].Digest != rep.Rewritten[0].New {
		t.Errorf("index.json: %+v", im.Manifests)
	}

	var got inspect
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "oci:"+dir)), &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got.Labels[k] != v {
			t.Errorf("skopeo inspect: label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	if got.Labels["maintainer"] != "yocto" {
		t.Errorf("existing label lost: %v", got.Labels)
	}
	t.Logf("skopeo inspect oci:%s labels: %v", filepath.Base(dir), got.Labels)

	// The layout stays valid for copying, by tag too.
	dst := filepath.Join(t.TempDir(), "copy")
	skopeo(t, "copy", "oci:"+dir+":latest", "oci:"+dst+":latest")
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "oci:"+dst+":latest")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Labels[Revision] != want[Revision] {
		t.Errorf("copied image lost its labels: %v", got.Labels)
	}

	// Applying again changes nothing.
	rep, err = Apply(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rewritten) != 0 || rep.Unchanged != 1 || len(blobs(t, dir)) != len(after) {
		t.Errorf("second apply: %+v", rep)
	}
}

func TestApplyNoLabels(t *testing.T) {
	dir, _ := newLayout(t)
	idx, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	rep, err := Apply(dir, Labels{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if len(rep.Rewritten) != 0 || string(idx) != string(after) {
		t.Errorf("OCI_IMAGE_AUTO_LABELS=0 must leave the layout alone: %+v", rep)
	}
}

func TestApplyMultiArchIndex(t *testing.T) {
	testtool.Need(t, "skopeo")
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img := ociImage(t, 1)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	multi := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	dir := filepath.Join(t.TempDir(), "multi-oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(multi, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}
	rep, err := Apply(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rewritten) != 2 {
		t.Fatalf("want both platforms rewritten: %+v", rep)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		var got inspect
		out := skopeo(t, "--override-arch", arch, "inspect", "oci:"+dir+":latest")
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got.Labels[Created] != want[Created] {
			t.Errorf("%s: labels %v", arch, got.Labels)
		}
	}
	// Platforms survive in the nested index.
	p, _ = layout.FromPath(dir)
	ii, _ := p.ImageIndex()
	im, _ := ii.IndexManifest()
	child, err := ii.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := child.IndexManifest()
	for _, d := range cm.Manifests {
		if d.Platform == nil || d.Platform.OS != "linux" {
			t.Errorf("platform lost: %+v", d)
		}
	}
}

func TestApplyArchive(t *testing.T) {
	testtool.Need(t, "skopeo")
	dir, _ := newLayout(t)
	archive := filepath.Join(t.TempDir(), "container-base-latest-oci.tar")
	writeTar(t, dir, archive)

	rep, err := Apply(archive, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rewritten) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	var got inspect
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "oci-archive:"+archive)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Labels[Revision] != want[Revision] || got.Labels[RefName] != want[RefName] {
		t.Errorf("oci-archive labels: %v", got.Labels)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	skopeo(t, "copy", "oci-archive:"+archive, "oci:"+dst+":latest")
}

// writeTar archives dir the way `tar -C dir -cf archive .` does.
func writeTar(t *testing.T, dir, archive string) {
	t.Helper()
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, _ := d.Info()
		h, _ := tar.FileInfoHeader(st, "")
		h.Name = "./" + filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name = strings.TrimSuffix(h.Name, "/") + "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !d.IsDir() {
			src, _ := os.Open(p)
			defer src.Close()
			_, err = io.Copy(tw, src)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestApplyDirArchive: the *-oci-dir.tar shape, the layout directory itself
// in the archive (`tar -C deploy -cf x-oci-dir.tar x-oci`), is labelled
// in that directory: the new blobs land beside the old ones, and the
// unpacked layout reads with the labels.
func TestApplyDirArchive(t *testing.T) {
	testtool.Need(t, "skopeo")
	dir, _ := newLayout(t)
	archive := filepath.Join(t.TempDir(), "container-base-latest-oci-dir.tar")
	if out, err := exec.Command("tar", "-C", filepath.Dir(dir), "-cf", archive, filepath.Base(dir)).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	rep, err := Apply(archive, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rewritten) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	out := t.TempDir()
	if b, err := exec.Command("tar", "-C", out, "-xf", archive).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, b)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 || entries[0].Name() != filepath.Base(dir) {
		t.Fatalf("the archive unpacks to %v, want only %s", entries, filepath.Base(dir))
	}
	var got inspect
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "oci:"+filepath.Join(out, filepath.Base(dir)))), &got); err != nil {
		t.Fatal(err)
	}
	if got.Labels[Revision] != want[Revision] || got.Labels["maintainer"] != "yocto" {
		t.Errorf("labels in the directory archive: %v", got.Labels)
	}

	// Two layouts in one archive: which one to label is not guessed.
	two := filepath.Join(t.TempDir(), "two.tar")
	other, _ := newLayout(t)
	os.Rename(other, filepath.Join(filepath.Dir(other), "other-oci"))
	if b, err := exec.Command("tar", "-cf", two, "-C", filepath.Dir(dir), filepath.Base(dir), "-C", filepath.Dir(other), "other-oci").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
	before, _ := os.ReadFile(two)
	if _, err := Apply(two, want); err == nil || !strings.Contains(err.Error(), "more than one layout") {
		t.Errorf("two layouts: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(two); string(after) != string(before) {
		t.Error("the refused archive was changed")
	}
}
