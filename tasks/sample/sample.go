// Package sample builds small, real OCI images and Yocto-style deploy
// trees with go-containerregistry. `make run` and the tests use it to get
// something to push without running bitbake. It writes only below the
// directory it is given.
package sample

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
)

// Spec describes one image: its name, the machine and the architecture its
// config records (Yocto spelling such as x86_64 or aarch64 is allowed) and
// a build stamp that makes its content unique.
type Spec struct {
	Name    string
	Machine string
	Arch    string
	Variant string
	Stamp   string // 14 digits, e.g. 20260108123456
	// Filler adds a file of that many bytes of incompressible data, derived
	// from the name, machine and stamp, to the build's own layer, so that
	// a build's layer has a chosen size (0: none, the layer as before).
	Filler int
}

// Image builds a two-layer OCI image for s. The same Spec always gives the
// same digest; the first layer depends only on the name and architecture, so
// builds of one image share it like real rebuilds often do.
func Image(s Spec) (v1.Image, error) {
	base, err := layer(map[string]string{
		"etc/os-release": fmt.Sprintf("ID=poky\nNAME=%q\nARCH=%s\n", s.Name, s.Arch),
		"bin/busybox":    fmt.Sprintf("busybox for %s\n", s.Arch),
	})
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"etc/build": fmt.Sprintf("image=%s\nmachine=%s\nstamp=%s\n", s.Name, s.Machine, s.Stamp),
	}
	if s.Filler > 0 {
		files["usr/share/filler"] = filler(s)
	}
	app, err := layer(files)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, app)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	created, err := time.Parse("20060102150405", s.Stamp)
	if err != nil {
		return nil, fmt.Errorf("stamp %q: want 14 digits (YYYYMMDDhhmmss)", s.Stamp)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = s.Arch
	cf.Variant = s.Variant
	cf.Created = v1.Time{Time: created.UTC()}
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.created":  created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.ref.name": "master",
	}
	return mutate.ConfigFile(img, cf)
}

// filler is s.Filler bytes of pseudo-random data seeded by the name,
// machine and stamp: the same Spec gives the same bytes, another stamp
// others, and gzip cannot shrink them.
func filler(s Spec) string {
	seed := sha256.Sum256([]byte(s.Name + "\x00" + s.Machine + "\x00" + s.Stamp))
	b := make([]byte, s.Filler)
	_, _ = rand.NewChaCha8(seed).Read(b) // never fails
	return string(b)
}

// layer makes a deterministic uncompressed-then-gzipped tar layer.
func layer(files map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	epoch := time.Unix(0, 0).UTC()
	for _, n := range names {
		body := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// WriteLayout writes img as a single-image OCI layout at dir whose
// index.json entry carries the ref-name annotation ref (as Yocto's
// image-oci class writes it).
func WriteLayout(dir string, img v1.Image, ref string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating layout %s: %w", dir, err)
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
}

// Index builds an OCI image index of imgs with each entry's platform taken
// from the image config (architecture normalised as pushes normalise it).
func Index(imgs ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := platform.OfConfig(cf)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

// WriteNestedLayout writes a multi-arch layout as Yocto's multiarch class
// does: index.json names one index blob, which lists the platform images.
func WriteNestedLayout(dir string, ref string, imgs ...v1.Image) error {
	idx, err := Index(imgs...)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating layout %s: %w", dir, err)
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
}

// WriteFlatLayout writes a multi-arch layout whose index.json lists the
// platform images directly.
func WriteFlatLayout(dir string, ref string, imgs ...v1.Image) error {
	idx, err := Index(imgs...)
	if err != nil {
		return err
	}
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("creating layout %s: %w", dir, err)
	}
	return nil
}

// Build is one image build in a deploy tree.
type Build struct {
	Spec
	// Latest makes a <name>-latest-oci symlink point at this build.
	Latest bool
	// NoDocuments leaves out the SPDX documents and package list oe-core
	// writes beside the image.
	NoDocuments bool
}

// DirName is the deploy directory name Yocto gives a build:
// <name>-<machine>.rootfs-<stamp>-oci.
func (b Build) DirName() string {
	return fmt.Sprintf("%s-%s.rootfs-%s-oci", b.Name, b.Machine, b.Stamp)
}

// WriteBuild writes one build below deployImages/<machine>/, plus its
// -latest-oci link, a .tar file, and the SPDX 3.0 documents and package
// list (with their IMAGE_LINK_NAME links) beside it like Yocto leaves.
func WriteBuild(deployImages string, b Build) (string, error) {
	img, err := Image(b.Spec)
	if err != nil {
		return "", err
	}
	mdir := filepath.Join(deployImages, b.Machine)
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(mdir, b.DirName())
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := WriteLayout(dir, img, "latest"); err != nil {
		return "", err
	}
	tarName := fmt.Sprintf("%s-%s.rootfs-%s.tar", b.Name, b.Machine, b.Stamp)
	if err := os.WriteFile(filepath.Join(mdir, tarName), []byte("not a real rootfs tarball\n"), 0o644); err != nil {
		return "", err
	}
	if !b.NoDocuments {
		if err := writeDocuments(mdir, b); err != nil {
			return "", err
		}
	}
	if b.Latest {
		link := filepath.Join(mdir, b.Name+"-latest-oci")
		_ = os.Remove(link)
		if err := os.Symlink(b.DirName(), link); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// DefaultBuilds is the sample tree of `make run`: two machines, two images
// each, and an older build of container-base on qemux86-64 that must not be
// pushed.
func DefaultBuilds() []Build {
	return []Build{
		{Spec: Spec{Name: "container-base", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260101080000"}},
		{Spec: Spec{Name: "container-base", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true},
		{Spec: Spec{Name: "app-server", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true},
		{Spec: Spec{Name: "container-base", Machine: "qemuarm64", Arch: "aarch64", Stamp: "20260108130000"}, Latest: true},
		{Spec: Spec{Name: "app-server", Machine: "qemuarm64", Arch: "aarch64", Stamp: "20260108130000"}, Latest: true},
	}
}

// WriteTree writes builds below deployImages (the DEPLOY_DIR_IMAGES
// directory) and returns the layout directories it created.
func WriteTree(deployImages string, builds []Build) ([]string, error) {
	var dirs []string
	for _, b := range builds {
		d, err := WriteBuild(deployImages, b)
		if err != nil {
			return nil, fmt.Errorf("writing %s for %s: %w", b.Name, b.Machine, err)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}
