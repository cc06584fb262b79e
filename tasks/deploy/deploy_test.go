package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// wideLayout writes a layout whose index.json lists its one image n
// times, under as many ref names.
func wideLayout(t *testing.T, n int) string {
	t.Helper()
	img, err := sample.Image(sample.Spec{Name: "wide", Machine: "m", Arch: "x86_64", Stamp: "20260101000000"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m", "wide-oci")
	if err := sample.WriteLayout(dir, img, "latest"); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	one := im.Manifests[0]
	im.Manifests = nil
	for i := 0; i < n; i++ {
		d := one
		d.Annotations = map[string]string{RefNameAnnotation: fmt.Sprintf("r%d", i)}
		im.Manifests = append(im.Manifests, d)
	}
	data, err := json.Marshal(im)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A layout whose index.json lists 4,000 entries loads at once: the index
// is parsed once, not once per entry (which took minutes).
func TestLoadWideIndex(t *testing.T) {
	dir := wideLayout(t, 4000)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		src, err := LoadPath(context.Background(), dir)
		if err == nil && len(src.Manifests) != 1 {
			err = fmt.Errorf("%d manifests, want 1", len(src.Manifests))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("4000 entries loaded in %v", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatalf("loading a layout of 4000 entries takes more than 10s")
	}
}

// Loading stops when the context ends.
func TestLoadCancelled(t *testing.T) {
	dir := wideLayout(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadPath(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("load with an ended context: %v", err)
	}
	if _, err := Discover(ctx, filepath.Dir(filepath.Dir(dir)), ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("discover with an ended context: %v", err)
	}
}

func TestParseName(t *testing.T) {
	cases := []struct{ base, machine, name, stamp string }{
		{"container-base-qemux86-64.rootfs-20260108123456.rootfs-oci", "qemux86-64", "container-base", "20260108123456"},
		{"container-base-qemux86-64.rootfs-20260108123456-oci", "qemux86-64", "container-base", "20260108123456"},
		{"container-base-latest-oci", "qemux86-64", "container-base", ""},
		{"container-base-qemux86-64.rootfs-oci", "qemux86-64", "container-base", ""},
		{"app-multiarch-oci", "beaglebone-yocto", "app", ""},
		{"app-beaglebone-yocto-20260108123456-oci", "beaglebone-yocto", "app", "20260108123456"},
	}
	for _, c := range cases {
		n, s, _, ok := ParseName(c.base, c.machine)
		if !ok || n != c.name || s != c.stamp {
			t.Errorf("ParseName(%q, %q) = %q %q %v, want %q %q", c.base, c.machine, n, s, ok, c.name, c.stamp)
		}
	}
	if _, _, _, ok := ParseName("foo.tar", "m"); ok {
		t.Error("foo.tar parsed")
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	if _, err := sample.WriteTree(root, sample.DefaultBuilds()); err != nil {
		t.Fatal(err)
	}
	res, err := Discover(context.Background(), root, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range res.Sources {
		got = append(got, s.Name+"/"+s.Machine+"/"+s.Arches()+"/"+s.Stamp)
	}
	want := []string{
		"app-server/qemuarm64/arm64/20260108130000", "app-server/qemux86-64/amd64/20260108123456",
		"container-base/qemuarm64/arm64/20260108130000", "container-base/qemux86-64/amd64/20260108123456",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sources = %v\nwant %v", got, want)
	}
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Dir, "20260101080000") {
		t.Fatalf("skipped = %+v", res.Skipped)
	}
	// Without the link the newest stamp still wins.
	os.Remove(filepath.Join(root, "qemux86-64", "container-base-latest-oci"))
	res, _ = Discover(context.Background(), root, filepath.Join(root, "qemux86-64")) // legacy dir too: no duplicates
	if len(res.Sources) != 4 || len(res.Skipped) != 1 {
		t.Fatalf("without link: %d sources %d skipped", len(res.Sources), len(res.Skipped))
	}
}
