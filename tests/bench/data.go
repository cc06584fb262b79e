package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// randomReader is a fast, reproducible stream of incompressible bytes.
func randomReader(seed uint64) io.Reader {
	var s [32]byte
	for i := range 4 {
		s[i*8] = byte(seed >> (8 * i))
	}
	s[31] = 0x5a
	return rand.NewChaCha8(s)
}

// writeRandomFile writes size random bytes to path and returns their
// sha256 digest.
func writeRandomFile(path string, size int64, seed uint64) (v1.Hash, error) {
	f, err := os.Create(path)
	if err != nil {
		return v1.Hash{}, err
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(randomReader(seed), size), make([]byte, 1<<20)); err != nil {
		f.Close()
		return v1.Hash{}, err
	}
	if err := f.Close(); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// randomLayer is a gzip layer (stored blocks: the data is incompressible,
// as real compressed layers are) holding one file of size random bytes.
func randomLayer(size int64, seed uint64) (v1.Layer, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: fmt.Sprintf("usr/share/bench/%d.bin", seed), Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tw, io.LimitReader(randomReader(seed), size)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// machine is a Yocto machine of the generated tree.
type machine struct {
	Name     string // directory name, e.g. qemux86-64
	YoctoArc string // what the image config records, e.g. x86_64
	Platform string // what a registry index says, e.g. amd64
}

var machines = []machine{
	{Name: "qemux86-64", YoctoArc: "x86_64", Platform: "amd64"},
	{Name: "qemuarm64", YoctoArc: "aarch64", Platform: "arm64"},
}

// treeImage is one image build of a generated deploy tree.
type treeImage struct {
	Name    string
	Machine machine
	Dir     string // the layout directory
}

// blobFile is one blob of a layout on disk.
type blobFile struct {
	Path   string
	Digest v1.Hash
	Size   int64
}

// tree is a generated Yocto deploy tree (DEPLOY_DIR_IMAGES).
type tree struct {
	Root   string
	Images []treeImage
	Names  []string   // image names, each built for every machine
	Blobs  []blobFile // layers and configs (what a push must upload)
	Bytes  int64      // total size of Blobs
}

// writeTree writes len(machines) × images × layers layers of layerSize
// random bytes as Yocto leaves them: <machine>/<name>-<machine>.rootfs-
// <stamp>-oci plus a <name>-latest-oci link. seed makes trees distinct.
func writeTree(root, prefix string, images, layers int, layerSize int64, seed uint64) (*tree, error) {
	return writeBuildTree(root, prefix, images, layers, 0, layerSize, seed, 0)
}

// writeBuildTree is writeTree for build number build of the same images:
// the first shared layers of every image are the same in every build, the
// others (and so the config and manifest) new in each; the stamp of the
// layout directories follows the build. Build 0 is writeTree's tree.
func writeBuildTree(root, prefix string, images, layers, shared int, layerSize int64, seed uint64, build int) (*tree, error) {
	t := &tree{Root: root}
	stamp := "20260108123456"
	if build > 0 {
		stamp = fmt.Sprintf("202601%02d%02d0000", 8+build/24, build%24)
	}
	for i := range images {
		t.Names = append(t.Names, fmt.Sprintf("%s-%d", prefix, i))
	}
	for mi, m := range machines {
		mdir := filepath.Join(root, m.Name)
		if err := os.MkdirAll(mdir, 0o755); err != nil {
			return nil, err
		}
		for i, name := range t.Names {
			img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
			img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
			for l := range layers {
				ls := seed + uint64(mi*1_000_000+i*1000+l)
				if l >= shared {
					ls += uint64(build) * 100_000_000
				}
				layer, err := randomLayer(layerSize, ls)
				if err != nil {
					return nil, err
				}
				if img, err = mutate.AppendLayers(img, layer); err != nil {
					return nil, err
				}
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, err
			}
			cf = cf.DeepCopy()
			cf.OS, cf.Architecture = "linux", m.YoctoArc
			cf.Created = v1.Time{Time: time.Date(2026, 1, 8, 12, 34, 56, 0, time.UTC)}
			cf.Config.Cmd = []string{"/bin/sh"}
			if img, err = mutate.ConfigFile(img, cf); err != nil {
				return nil, err
			}
			base := fmt.Sprintf("%s-%s.rootfs-%s-oci", name, m.Name, stamp)
			dir := filepath.Join(mdir, base)
			if err := sample.WriteLayout(dir, img, "latest"); err != nil {
				return nil, err
			}
			if err := os.Symlink(base, filepath.Join(mdir, name+"-latest-oci")); err != nil {
				return nil, err
			}
			t.Images = append(t.Images, treeImage{Name: name, Machine: m, Dir: dir})
			blobs, err := imageBlobs(dir, img)
			if err != nil {
				return nil, err
			}
			for _, b := range blobs {
				t.Blobs = append(t.Blobs, b)
				t.Bytes += b.Size
			}
		}
	}
	return t, nil
}

// imageBlobs lists the config and layer files of img in layout dir.
func imageBlobs(dir string, img v1.Image) ([]blobFile, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var out []blobFile
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		out = append(out, blobFile{Path: filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex), Digest: d.Digest, Size: d.Size})
	}
	return out, nil
}

// writeBigLayout writes an OCI layout at dir holding one image whose single
// layer is the existing file blob (hard-linked, or copied when a link is
// not possible). It is what the memory measurement pushes.
func writeBigLayout(dir string, blob blobFile) error {
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return err
	}
	if err := os.Link(blob.Path, filepath.Join(bdir, blob.Digest.Hex)); err != nil {
		return fmt.Errorf("linking the big blob into %s: %w", dir, err)
	}
	put := func(v any) (v1.Descriptor, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return v1.Descriptor{}, err
		}
		sum := sha256.Sum256(b)
		h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		return v1.Descriptor{Digest: h, Size: int64(len(b))}, os.WriteFile(filepath.Join(bdir, h.Hex), b, 0o644)
	}
	cfg := v1.ConfigFile{
		OS: "linux", Architecture: "x86_64", Created: v1.Time{Time: time.Date(2026, 1, 8, 12, 34, 56, 0, time.UTC)},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{blob.Digest}},
	}
	cd, err := put(cfg)
	if err != nil {
		return err
	}
	cd.MediaType = types.OCIConfigJSON
	man := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cd,
		Layers: []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Digest: blob.Digest, Size: blob.Size}},
	}
	md, err := put(man)
	if err != nil {
		return err
	}
	md.MediaType = types.OCIManifestSchema1
	md.Annotations = map[string]string{"org.opencontainers.image.ref.name": "latest"}
	idx, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{md}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
