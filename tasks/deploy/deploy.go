// Package deploy finds the OCI image layouts a Yocto build left in its
// deploy directories and reads them: which image and machine each belongs
// to, which build is the newest, and the platform of every manifest. The
// layouts themselves are read through package ocilayout (bounded, linear,
// cancellable). It never talks to a registry.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/ocilayout"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
)

// RefNameAnnotation is the OCI annotation Yocto sets on index.json entries.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Manifest is one platform image of a layout.
type Manifest struct {
	Image    v1.Image
	Digest   v1.Hash
	Platform v1.Platform // from the image config, architecture normalised
	// Layout is the layout the image is read from.
	Layout *ocilayout.Layout
}

// Source is one layout chosen for pushing.
type Source struct {
	Name    string // image name, e.g. container-base
	Machine string // machine directory it lives in, e.g. qemux86-64
	Dir     string // the layout directory (symlinks resolved)
	Link    string // the -latest-oci link that chose it, if any
	Stamp   string // build stamp from the directory name, if any
	// Index is the image index of a nested multi-arch layout, pushed as it
	// is when nothing else shares its tag; nil for single images.
	Index     v1.ImageIndex
	Manifests []Manifest
	// Documents are the build's SBOM, CVE-check SBOM and package list
	// found beside the layout (see Documents).
	Documents []Document
}

// Arches lists the platforms of s for messages, e.g. "amd64" or
// "amd64, arm64/v7".
func (s *Source) Arches() string {
	var out []string
	for _, m := range s.Manifests {
		out = append(out, platform.Short(m.Platform))
	}
	return strings.Join(out, ", ")
}

// Skipped is a layout that was found but is not pushed, and why.
type Skipped struct {
	Dir     string
	Name    string
	Machine string
	Reason  string
}

// Result is what Discover found.
type Result struct {
	Sources []*Source
	Skipped []Skipped // older builds and the like: not an error
	Broken  []Skipped // unreadable layouts: reported as failures
	Roots   []string  // directories searched
}

// Names lists the distinct image names of r's sources, sorted.
func (r *Result) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range r.Sources {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

var (
	stampRe = regexp.MustCompile(`^(.*)[-_.](\d{14}|\d{8}-\d{6}|\d{12})$`)
)

// ParseName derives the image name from a deploy directory name: it strips
// "-latest-oci"/"-oci", "-multiarch", the "-<machine>" suffix, and
// ".rootfs-<stamp>"/".rootfs". ok is false when base does not end in -oci.
func ParseName(base, machine string) (name, stamp string, latest, ok bool) {
	s, ok := strings.CutSuffix(base, "-oci")
	if !ok || s == "" {
		return "", "", false, false
	}
	for changed := true; changed; {
		before := s
		if t, found := strings.CutSuffix(s, "-latest"); found {
			s, latest = t, true
		}
		s = strings.TrimSuffix(s, ".rootfs")
		s = strings.TrimSuffix(s, "-rootfs")
		if m := stampRe.FindStringSubmatch(s); m != nil && stamp == "" {
			s, stamp = m[1], strings.ReplaceAll(m[2], "-", "")
		}
		s = strings.TrimSuffix(s, "-multiarch")
		if machine != "" {
			s = strings.TrimSuffix(s, "-"+machine)
		}
		changed = s != before && s != ""
	}
	if s == "" {
		return "", "", false, false
	}
	return s, stamp, latest, true
}

// Discover searches every machine directory under deployImages (may be
// "") and the single machine directory deployImage (may be ""). It stops
// when ctx ends, and so do later reads of the layouts it returns.
func Discover(ctx context.Context, deployImages, deployImage string) (*Result, error) {
	res := &Result{}
	var machineDirs []string
	if deployImages != "" {
		res.Roots = append(res.Roots, deployImages)
		entries, err := os.ReadDir(deployImages)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading DEPLOY_DIR_IMAGES %s: %w", deployImages, err)
		}
		for _, e := range entries {
			p := filepath.Join(deployImages, e.Name())
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				machineDirs = append(machineDirs, p)
			}
		}
	}
	if deployImage != "" {
		res.Roots = append(res.Roots, deployImage)
		if fi, err := os.Stat(deployImage); err == nil && fi.IsDir() {
			machineDirs = append(machineDirs, deployImage)
		}
	}
	seen := map[string]bool{}
	for _, md := range machineDirs {
		real, err := filepath.EvalSymlinks(md)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		if err := discoverMachine(ctx, res, md); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(res.Sources, func(i, j int) bool {
		a, b := res.Sources[i], res.Sources[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Machine < b.Machine
	})
	return res, nil
}

type candidate struct {
	dir   string // real directory
	base  string
	stamp string
	mtime time.Time
}

type group struct {
	name, machine string
	builds        map[string]*candidate // by real dir
	link          string                // link name whose target is newest
	linkTarget    string
}

func discoverMachine(ctx context.Context, res *Result, mdir string) error {
	machine := filepath.Base(mdir)
	entries, err := os.ReadDir(mdir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", mdir, err)
	}
	groups := map[string]*group{}
	get := func(name string) *group {
		g := groups[name]
		if g == nil {
			g = &group{name: name, machine: machine, builds: map[string]*candidate{}}
			groups[name] = g
		}
		return g
	}
	var links []os.DirEntry
	for _, e := range entries {
		p := filepath.Join(mdir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			links = append(links, e)
			continue
		}
		if !e.IsDir() || !isLayout(p) {
			continue
		}
		name, stamp, _, ok := ParseName(e.Name(), machine)
		if !ok {
			continue
		}
		fi, _ := os.Stat(filepath.Join(p, "index.json"))
		c := &candidate{dir: p, base: e.Name(), stamp: stamp}
		if fi != nil {
			c.mtime = fi.ModTime()
		}
		get(name).builds[p] = c
	}
	for _, e := range links {
		p := filepath.Join(mdir, e.Name())
		name, _, _, ok := ParseName(e.Name(), machine)
		if !ok {
			continue
		}
		target, err := filepath.EvalSymlinks(p)
		if err != nil || !isLayout(target) {
			continue // dangling link: the builds themselves still count
		}
		realMdir, _ := filepath.EvalSymlinks(mdir)
		if filepath.Dir(target) == realMdir {
			target = filepath.Join(mdir, filepath.Base(target))
		}
		g := get(name)
		if _, ok := g.builds[target]; !ok {
			// A link named after one image pointing at a build whose name
			// parses to another (or outside): trust the link.
			_, stamp, _, _ := ParseName(filepath.Base(target), machine)
			g.builds[target] = &candidate{dir: target, base: filepath.Base(target), stamp: stamp}
			for _, og := range groups {
				if og != g {
					delete(og.builds, target)
				}
			}
		}
		g.link, g.linkTarget = e.Name(), target
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		g := groups[n]
		if len(g.builds) == 0 {
			continue
		}
		chosen := g.linkTarget
		if chosen == "" {
			var best *candidate
			for _, c := range g.builds {
				if best == nil || newer(c, best) {
					best = c
				}
			}
			chosen = best.dir
		}
		for _, c := range sortedCandidates(g.builds) {
			if c.dir == chosen {
				continue
			}
			res.Skipped = append(res.Skipped, Skipped{Dir: c.dir, Name: g.name, Machine: machine,
				Reason: "older build; newest is " + filepath.Base(chosen)})
		}
		src, err := Load(ctx, chosen, g.name, machine)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			res.Broken = append(res.Broken, Skipped{Dir: chosen, Name: g.name, Machine: machine, Reason: err.Error()})
			continue
		}
		src.Link = g.link
		src.Stamp = g.builds[chosen].stamp
		res.Sources = append(res.Sources, src)
	}
	return nil
}

func newer(a, b *candidate) bool {
	if a.stamp != b.stamp {
		return a.stamp > b.stamp
	}
	if !a.mtime.Equal(b.mtime) {
		return a.mtime.After(b.mtime)
	}
	return a.base > b.base
}

func sortedCandidates(m map[string]*candidate) []*candidate {
	out := make([]*candidate, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].base < out[j].base })
	return out
}

func isLayout(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "index.json"))
	return err == nil && fi.Mode().IsRegular()
}

// LoadPath reads the layout at dir given on the command line: the machine
// is its parent directory's name and the image name follows the deploy
// naming rules (or is the directory name when it does not end in -oci).
func LoadPath(ctx context.Context, dir string) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if !isLayout(abs) {
		return nil, fmt.Errorf("%s is not an OCI image layout (no index.json)", dir)
	}
	machine := filepath.Base(filepath.Dir(abs))
	base := filepath.Base(abs)
	name, stamp, _, ok := ParseName(base, machine)
	if !ok {
		name = strings.ToLower(base)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	if real != abs {
		if _, s, _, ok := ParseName(filepath.Base(real), machine); ok {
			stamp = s
		}
	}
	src, err := Load(ctx, real, name, machine)
	if err != nil {
		return nil, err
	}
	src.Stamp = stamp
	return src, nil
}

// Load reads the layout at dir as a source of image name on machine. The
// layout is read as package ocilayout reads it (index.json once, every
// document within its declared size and digest, no symlinks), and reads
// stop when ctx ends.
func Load(ctx context.Context, dir, name, machine string) (*Source, error) {
	if err := imageref.ValidateRepository(name); err != nil {
		return nil, fmt.Errorf("image name %q (from %s) is not a valid repository name: %w", name, filepath.Base(dir), err)
	}
	l, err := ocilayout.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	src := &Source{Name: name, Machine: machine, Dir: dir, Documents: Documents(dir)}
	entries := l.Manifests()
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s/index.json lists no manifests", dir)
	}
	var imageDescs []v1.Descriptor
	for _, d := range entries {
		switch {
		case d.MediaType.IsIndex():
			if len(entries) != 1 {
				return nil, fmt.Errorf("%s/index.json mixes an image index with other entries; expected one nested index", dir)
			}
			child, err := l.ImageIndex(d)
			if err != nil {
				return nil, fmt.Errorf("%s: nested %w", dir, err)
			}
			cim, err := child.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, cd := range cim.Manifests {
				if !cd.MediaType.IsImage() {
					return nil, fmt.Errorf("nested index %s in %s: entry %s is not an image manifest (%s)", d.Digest, dir, cd.Digest, cd.MediaType)
				}
				m, err := manifestOf(l, child, cd)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", dir, err)
				}
				src.Manifests = append(src.Manifests, m)
			}
			src.Index = child
		case d.MediaType.IsImage():
			imageDescs = append(imageDescs, d)
		default:
			return nil, fmt.Errorf("%s/index.json: entry %s has unsupported media type %q", dir, d.Digest, d.MediaType)
		}
	}
	if src.Index == nil {
		byPlatform := map[string]int{}
		for _, d := range imageDescs {
			m, err := manifestOf(l, l.Index(), d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", dir, err)
			}
			key := platform.Short(m.Platform)
			if i, dup := byPlatform[key]; dup {
				// Several entries for one platform: the "latest" ref wins.
				if d.Annotations[RefNameAnnotation] == "latest" {
					src.Manifests[i] = m
				}
				continue
			}
			byPlatform[key] = len(src.Manifests)
			src.Manifests = append(src.Manifests, m)
		}
	}
	if len(src.Manifests) == 0 {
		return nil, fmt.Errorf("%s holds no image manifests", dir)
	}
	sort.SliceStable(src.Manifests, func(i, j int) bool {
		return platform.Short(src.Manifests[i].Platform) < platform.Short(src.Manifests[j].Platform)
	})
	return src, nil
}

// manifestOf reads the image of entry d of idx, an index of l, and its
// platform.
func manifestOf(l *ocilayout.Layout, idx v1.ImageIndex, d v1.Descriptor) (Manifest, error) {
	img, err := idx.Image(d.Digest)
	if err != nil {
		return Manifest{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Manifest{}, err
	}
	p := platform.OfConfig(cf)
	if p.Architecture == "" && d.Platform != nil {
		p = *d.Platform
	}
	if p.Architecture == "" {
		return Manifest{}, fmt.Errorf("image %s: its config names no architecture", d.Digest)
	}
	if p.OS == "" {
		p.OS = "linux"
	}
	p = platform.Normalize(p)
	return Manifest{Image: img, Digest: d.Digest, Platform: p, Layout: l}, nil
}
