package ocilayout

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// writeLayout writes a single-image layout and returns its directory and
// the image.
func writeLayout(t *testing.T) (string, v1.Image) {
	t.Helper()
	img, err := sample.Image(sample.Spec{Name: "app", Machine: "m", Arch: "x86_64", Stamp: "20260101000000"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "app-oci")
	if err := sample.WriteLayout(dir, img, "latest"); err != nil {
		t.Fatal(err)
	}
	return dir, img
}

// tarLayout writes the files of dir into a tar archive and returns it.
func tarLayout(t *testing.T, dir string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "layout.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

// setIndex replaces the entries of dir's index.json with ds.
func setIndex(t *testing.T, dir string, ds []v1.Descriptor) {
	t.Helper()
	data, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: ds})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func blobPath(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }

// sameImage checks that got reads exactly like want, every layer byte.
func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	gd, _ := got.Digest()
	wd, _ := want.Digest()
	gc, err := got.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wc, _ := want.RawConfigFile()
	if gd != wd || !bytes.Equal(gc, wc) {
		t.Fatalf("image %s / config differs from %s", gd, wd)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wl, _ := want.Layers()
	if len(gl) != len(wl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range gl {
		rc, err := gl[i].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		g, _ := io.ReadAll(rc)
		rc.Close()
		rc, _ = wl[i].Compressed()
		w, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(g, w) {
			t.Fatalf("layer %d differs", i)
		}
	}
}

// A layout reads the same from its directory and, in place, from an
// archive of it.
func TestDirectoryAndArchive(t *testing.T) {
	dir, img := writeLayout(t)
	archive := tarLayout(t, dir)
	for _, open := range []func() (*Layout, error){
		func() (*Layout, error) { return Open(context.Background(), dir) },
		func() (*Layout, error) { return OpenArchive(context.Background(), archive) },
	} {
		l, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Manifests()) != 1 {
			t.Fatalf("%s: entries %v", l.Path, l.Manifests())
		}
		got, err := l.Image(l.Manifests()[0])
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, got, img)
		if err := l.CheckImage(got); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
}

// An index of thousands of entries is parsed once: reading every entry
// takes about as long as parsing it.
func TestWideIndexIsLinear(t *testing.T) {
	dir, _ := writeLayout(t)
	l, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	one := l.Manifests()[0]
	var ds []v1.Descriptor
	for i := 0; i < MaxIndexEntries; i++ {
		d := one
		d.Annotations = map[string]string{"org.opencontainers.image.ref.name": fmt.Sprintf("r%d", i)}
		ds = append(ds, d)
	}
	setIndex(t, dir, ds)
	start := time.Now()
	l, err = Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l.Manifests() {
		if _, err := l.Index().Image(d.Digest); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("reading %d entries took %v", len(ds), took)
	} else {
		t.Logf("reading %d entries took %v", len(ds), took)
	}
}

// Every limit is an error that names the file, the field or the declared
// digest, before anything large is read.
func TestLimits(t *testing.T) {
	type bad struct {
		name  string
		setup func(t *testing.T, dir string, img v1.Image) // damages the layout at dir
		want  func(img v1.Image) []string
	}
	manifestDigest := func(img v1.Image) v1.Hash { d, _ := img.Digest(); return d }
	configDigest := func(img v1.Image) v1.Hash { m, _ := img.Manifest(); return m.Config.Digest }
	entry := func(t *testing.T, dir string) v1.Descriptor {
		l, err := Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		return l.Manifests()[0]
	}
	cases := []bad{
		{"too many entries", func(t *testing.T, dir string, img v1.Image) {
			ds := make([]v1.Descriptor, MaxIndexEntries+1)
			for i := range ds {
				ds[i] = entry(t, dir)
			}
			setIndex(t, dir, ds)
		}, func(img v1.Image) []string { return []string{"index.json lists 4097 entries; at most 4096"} }},
		{"index.json too large", func(t *testing.T, dir string, img v1.Image) {
			f := filepath.Join(dir, "index.json")
			data, _ := os.ReadFile(f)
			os.WriteFile(f, append(data, bytes.Repeat([]byte(" "), MaxDocumentSize)...), 0o644)
		}, func(img v1.Image) []string { return []string{"index.json is", "more than the 4194304 allowed"} }},
		{"manifest of 2^62 bytes", func(t *testing.T, dir string, img v1.Image) {
			d := entry(t, dir)
			d.Size = 1 << 62
			setIndex(t, dir, []v1.Descriptor{d})
		}, func(img v1.Image) []string {
			return []string{"index.json: entry 0 (" + manifestDigest(img).String() + ") declares 4611686018427387904 bytes"}
		}},
		{"manifest larger than declared", func(t *testing.T, dir string, img v1.Image) {
			f := blobPath(dir, manifestDigest(img))
			data, _ := os.ReadFile(f)
			os.WriteFile(f, append(data, ' '), 0o644)
		}, func(img v1.Image) []string {
			return []string{"manifest " + manifestDigest(img).String(), "more than the"}
		}},
		{"manifest replaced", func(t *testing.T, dir string, img v1.Image) {
			f := blobPath(dir, manifestDigest(img))
			data, _ := os.ReadFile(f)
			os.WriteFile(f, bytes.Replace(data, []byte("layer"), []byte("LAYER"), 1), 0o644)
		}, func(img v1.Image) []string { return []string{"manifest " + manifestDigest(img).String(), "hashes to"} }},
		{"config larger than declared", func(t *testing.T, dir string, img v1.Image) {
			f := blobPath(dir, configDigest(img))
			if err := os.Truncate(f, 512<<20); err != nil {
				t.Fatal(err)
			}
		}, func(img v1.Image) []string {
			return []string{"config " + configDigest(img).String(), blobPath("", configDigest(img)), "is 536870912 bytes, more than the"}
		}},
		{"blob symlinked out", func(t *testing.T, dir string, img v1.Image) {
			f := blobPath(dir, configDigest(img))
			out := filepath.Join(t.TempDir(), "config")
			data, _ := os.ReadFile(f)
			os.WriteFile(out, data, 0o644)
			os.Remove(f)
			os.Symlink(out, f)
		}, func(img v1.Image) []string { return []string{"is a symlink"} }},
		{"blobs/sha256 symlinked out", func(t *testing.T, dir string, img v1.Image) {
			blobs := filepath.Join(dir, "blobs", "sha256")
			out := filepath.Join(t.TempDir(), "sha256")
			if err := os.Rename(blobs, out); err != nil {
				t.Fatal(err)
			}
			os.Symlink(out, blobs)
		}, func(img v1.Image) []string { return []string{"blobs/sha256 is a symlink"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, img := writeLayout(t)
			c.setup(t, dir, img)
			err := readAll(dir)
			if err == nil {
				t.Fatalf("no error")
			}
			for _, w := range c.want(img) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// readAll opens dir and reads every image's manifest, config and blobs.
func readAll(dir string) error {
	l, err := Open(context.Background(), dir)
	if err != nil {
		return err
	}
	for _, d := range l.Manifests() {
		img, err := l.Image(d)
		if err != nil {
			return err
		}
		if _, err := img.ConfigFile(); err != nil {
			return err
		}
		if err := l.CheckImage(img); err != nil {
			return err
		}
	}
	return nil
}

// Archives are read in place: a sparse entry, a gzip stream, a name
// leaving the archive, a symlinked blob or data past the end are refused
// without writing anything.
func TestArchiveRefusals(t *testing.T) {
	gnuTar := testtool.Need(t, "tar") // GNU tar writes the sparse archive
	dir, img := writeLayout(t)
	m, _ := img.Manifest()
	layer := m.Layers[0].Digest

	sparse := filepath.Join(t.TempDir(), "sparse.tar")
	if err := os.Truncate(blobPath(dir, layer), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blobPath(dir, layer), 1<<40); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gnuTar, "--sparse", "--format=pax", "-C", dir, "-cf", sparse, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	dir, _ = writeLayout(t)
	good := tarLayout(t, dir)
	gz := filepath.Join(t.TempDir(), "layout.tar.gz")
	if out, err := exec.Command("sh", "-c", "gzip -c < "+good+" > "+gz).CombinedOutput(); err != nil {
		t.Fatalf("gzip: %v\n%s", err, out)
	}
	truncated := filepath.Join(t.TempDir(), "cut.tar")
	data, _ := os.ReadFile(good)
	os.WriteFile(truncated, data[:len(data)/2&^511], 0o644) // at a block boundary
	escape := filepath.Join(t.TempDir(), "escape.tar")
	writeTar(t, escape, &tar.Header{Name: "../index.json", Typeflag: tar.TypeReg, Mode: 0o644})
	linked := filepath.Join(t.TempDir(), "linked.tar")
	os.Remove(blobPath(dir, layer))
	os.Symlink("/etc/hostname", blobPath(dir, layer))
	linkedArchive := tarLayout(t, dir)
	os.Rename(linkedArchive, linked)

	for _, c := range []struct{ file, want string }{
		{sparse, "is a sparse file of 1099511627776 bytes"},
		{gz, "is gzip-compressed"},
		{truncated, "truncated archive"},
		{escape, `entry "../index.json" leaves the archive`},
		{linked, "blob " + layer.String() + " is a symlink"},
	} {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		err := readArchive(c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", filepath.Base(c.file), err, c.want)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
			t.Errorf("%s: %d files written to TMPDIR", filepath.Base(c.file), len(ents))
		}
	}
}

func readArchive(file string) error {
	l, err := OpenArchive(context.Background(), file)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, d := range l.Manifests() {
		img, err := l.Image(d)
		if err != nil {
			return err
		}
		if err := l.CheckImage(img); err != nil {
			return err
		}
	}
	return nil
}

func writeTar(t *testing.T, file string, hs ...*tar.Header) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Reads stop once the context ends, in the middle of a blob too.
func TestCancel(t *testing.T) {
	dir, _ := writeLayout(t)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := l.Image(l.Manifests()[0])
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading after cancel: %v", err)
	}
	if _, err := layers[1].Compressed(); !errors.Is(err, context.Canceled) {
		t.Fatalf("opening after cancel: %v", err)
	}
	if _, err := Open(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("open after cancel: %v", err)
	}
}
