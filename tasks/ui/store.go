package ui

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// Limits of what one page reads and shows (a hostile push must not make
// the server read, keep or answer without bound).
const (
	// maxJSON bounds the manifests and configs the pages read.
	maxJSON = 4 << 20
	// maxPlatforms is how many manifests of one index a page reads and
	// shows; the rest are counted.
	maxPlatforms = 64
	// maxValue is how many bytes of one label value, environment entry or
	// command word a page shows; a longer one is cut with a note.
	maxValue = 1 << 10
	// maxInfo is how many bytes of labels, environment, command and ports
	// of one config a page shows; the rest are counted.
	maxInfo = 16 << 10
)

// repoRows is one repository's tags, newest push first, ready to render.
type repoRows struct {
	Name   string
	Tags   []tagRow
	Filter string // lower-case name and tags, for the filter box
	// HTML is the repository's part of the index page, rendered once.
	HTML  template.HTML
	seq   uint64
	built time.Time
}

// tagRow is one tag as the index shows it.
type tagRow struct {
	Name      string
	Digest    digest.Digest
	Pushed    time.Time
	Href      string
	Platforms string
	Size      string
	PushedISO string
	When      string
	// Signed says who signed the tag's manifest ("signed by <short
	// fingerprint>", "signed by another key"; "" unsigned) and SignedBy
	// names the registry key's full fingerprint.
	Signed   string
	SignedBy string
}

// Image is what one manifest (an index or a single image) holds.
type Image struct {
	Digest    digest.Digest
	MediaType string
	Index     bool
	Size      int64 // compressed bytes of every distinct layer and config shown
	Platforms []*Platform
	// Omitted counts the manifests of the index beyond maxPlatforms,
	// neither read nor shown.
	Omitted int
}

// Platform is one image manifest: of an index, or the manifest itself.
type Platform struct {
	Name      string // os/arch[/variant]
	Digest    digest.Digest
	MediaType string
	Config    Blob
	Layers    []Blob
	Size      int64 // config and layers
	Info      ConfigInfo
	Err       string // why the manifest or config could not be read
	// Repeat is true for an index entry whose manifest an earlier entry
	// lists: the page shows it once.
	Repeat bool
}

// Blob is a descriptor the page shows.
type Blob struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
}

// ConfigInfo is what an image config says about running the image.
type ConfigInfo struct {
	Entrypoint, Cmd, Env, Ports []string
	User, WorkingDir, Created   string
	Labels                      []Label
	// Omitted counts the labels, environment entries, command words and
	// ports beyond maxInfo bytes, not shown.
	Omitted int
}

// configEntry is what the pages keep of one config: its platform and
// what it says, cut to what a page shows.
type configEntry struct {
	name string
	info ConfigInfo
	err  string // the config does not parse
}

// Label is one config label.
type Label struct{ Key, Value string }

// catalog lists every repository.
func (s *Site) catalog(ctx context.Context) ([]string, error) {
	if names := s.cache.getCatalog(); names != nil {
		return names, nil
	}
	seq := s.cache.now()
	enum, ok := s.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return nil, errors.New("the registry cannot list its repositories")
	}
	var names []string
	err := enum.Enumerate(ctx, func(n string) error {
		names = append(names, n)
		return nil
	})
	var pnf storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &pnf) {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	slices.Sort(names)
	s.cache.putCatalog(names, seq)
	return names, nil
}

// readers is how many repositories are read from storage at once.
const readers = 4

// repos reads the tags of every repository of names (readers at a time
// while the cache is cold).
func (s *Site) repos(ctx context.Context, names []string) ([]*repoRows, error) {
	out := make([]*repoRows, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readers)
	for i, n := range names {
		g.Go(func() (err error) {
			out[i], err = s.repo(gctx, n)
			return err
		})
	}
	return out, g.Wait()
}

// repo reads the tags of repository name with their push times and image
// summaries.
func (s *Site) repo(ctx context.Context, name string) (*repoRows, error) {
	if r := s.cache.getRepo(name); r != nil {
		return r, nil
	}
	seq := s.cache.now()
	named, err := reference.WithName(name)
	if err != nil {
		return nil, err
	}
	repo, err := s.ns.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	tags, err := repo.Tags(ctx).All(ctx)
	var unknown distribution.ErrRepositoryUnknown
	if err != nil && !errors.As(err, &unknown) {
		return nil, fmt.Errorf("listing tags of %s: %w", name, err)
	}
	r := &repoRows{Name: name, seq: seq, built: time.Now()}
	filter := []string{name}
	// Signature and attestation tags are not rows: each signed tag says
	// who signed it.
	sigs := map[string]bool{}
	for _, t := range tags {
		if _, ok := sign.IsAttachedTag(t); ok {
			sigs[t] = true
		}
	}
	var keys sign.Keys
	if len(sigs) > 0 {
		keys, _ = sign.KnownKeys(s.c)
	}
	for _, t := range tags {
		if sigs[t] {
			continue
		}
		desc, err := repo.Tags(ctx).Get(ctx, t)
		if err != nil {
			continue // deleted meanwhile
		}
		row := tagRow{Name: t, Digest: desc.Digest, Href: imageHref(name, t)}
		if sigTag := sign.SigTag(v1Hash(desc.Digest)); sigs[sigTag] {
			row.Signed, row.SignedBy = s.signedBy(ctx, repo, sigTag, desc.Digest, keys)
		}
		if fi, err := s.driver.Stat(ctx, regstore.TagCurrentLink(name, t)); err == nil {
			row.Pushed = fi.ModTime().UTC()
			row.PushedISO = row.Pushed.Format(time.RFC3339)
			row.When = row.Pushed.Format("2006-01-02 15:04")
		}
		if im, err := s.image(ctx, repo, desc.Digest); err == nil {
			row.Platforms = strings.Join(im.platformNames(), ", ")
			row.Size = tasks.HumanBytes(im.Size)
		}
		r.Tags = append(r.Tags, row)
		filter = append(filter, t)
	}
	slices.SortStableFunc(r.Tags, func(a, b tagRow) int {
		if c := b.Pushed.Compare(a.Pushed); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	r.Filter = strings.ToLower(strings.Join(filter, " "))
	var buf bytes.Buffer
	tmpls, err := pages()
	if err != nil {
		return nil, err
	}
	if err := tmpls["index"].ExecuteTemplate(&buf, "repo", r); err != nil {
		return nil, err
	}
	r.HTML = template.HTML(buf.String())
	s.cache.putRepo(r)
	return r, nil
}

// signedBy says who signed manifest dgst of repo in its signature tag
// sigTag, checked against keys (the registry's signing key).
func (s *Site) signedBy(ctx context.Context, repo distribution.Repository, sigTag string, dgst digest.Digest, keys sign.Keys) (text, fingerprint string) {
	desc, err := repo.Tags(ctx).Get(ctx, sigTag)
	if err != nil {
		return "", ""
	}
	ch, err := sign.CheckStored(ctx, repo, desc.Digest, dgst, keys)
	switch {
	case err != nil:
		return "signature unreadable", ""
	case len(ch.SignedBy) > 0:
		fp := ch.SignedBy[0]
		return "signed by " + shortFingerprint(fp), fp
	case len(keys) == 0:
		return "signed (no key to check it with)", ""
	}
	return "signed by another key", ""
}

// shortFingerprint is "sha256:" and the first 16 hex digits.
func shortFingerprint(fp string) string {
	if len(fp) > 23 {
		return fp[:23] + "…"
	}
	return fp
}

func v1Hash(d digest.Digest) ggcrv1.Hash {
	return ggcrv1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}

// image reads the manifest dgst of repo: an index with its platform
// manifests, or one image manifest, with configs.
func (s *Site) image(ctx context.Context, repo distribution.Repository, dgst digest.Digest) (*Image, error) {
	if im := s.cache.getImage(dgst); im != nil {
		return im, nil
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	mt, payload, err := manifestPayload(ctx, ms, dgst)
	if err != nil {
		return nil, err
	}
	im := &Image{Digest: dgst, MediaType: mt}
	var idx v1.Index
	if err := json.Unmarshal(payload, &idx); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dgst, err)
	}
	if isIndex(mt, idx) {
		im.Index = true
		list := idx.Manifests
		if len(list) > maxPlatforms {
			im.Omitted, list = len(list)-maxPlatforms, list[:maxPlatforms]
		}
		read := map[digest.Digest]*Platform{} // each digest once per page
		for _, d := range list {
			p0, repeat := read[d.Digest]
			if !repeat {
				p0 = s.platform(ctx, repo, ms, d.Digest, d.MediaType)
				read[d.Digest] = p0
			}
			p := *p0
			p.Repeat = repeat
			if d.Platform != nil {
				p.Name = platformName(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)
			}
			im.Platforms = append(im.Platforms, &p)
		}
	} else {
		im.Platforms = []*Platform{s.platformFrom(ctx, repo, dgst, mt, payload)}
	}
	seen := map[digest.Digest]bool{}
	for _, p := range im.Platforms {
		for _, b := range append([]Blob{p.Config}, p.Layers...) {
			if b.Digest != "" && !seen[b.Digest] {
				seen[b.Digest] = true
				im.Size += b.Size
			}
		}
	}
	s.cache.putImage(im)
	return im, nil
}

// isIndex tells an image index (or Docker manifest list) from a manifest.
func isIndex(mt string, idx v1.Index) bool {
	switch mt {
	case v1.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	case v1.MediaTypeImageManifest, "application/vnd.docker.distribution.manifest.v2+json":
		return false
	}
	return len(idx.Manifests) > 0
}

func manifestPayload(ctx context.Context, ms distribution.ManifestService, dgst digest.Digest) (string, []byte, error) {
	m, err := ms.Get(ctx, dgst)
	if err != nil {
		return "", nil, fmt.Errorf("manifest %s: %w", dgst, err)
	}
	return m.Payload()
}

// platform reads one platform manifest of an index.
func (s *Site) platform(ctx context.Context, repo distribution.Repository, ms distribution.ManifestService, dgst digest.Digest, mt string) *Platform {
	mt2, payload, err := manifestPayload(ctx, ms, dgst)
	if err != nil {
		return &Platform{Digest: dgst, MediaType: mt, Err: err.Error()}
	}
	return s.platformFrom(ctx, repo, dgst, mt2, payload)
}

// platformFrom reads an image manifest's config.
func (s *Site) platformFrom(ctx context.Context, repo distribution.Repository, dgst digest.Digest, mt string, payload []byte) *Platform {
	p := &Platform{Digest: dgst, MediaType: mt}
	var m v1.Manifest
	if err := json.Unmarshal(payload, &m); err != nil {
		p.Err = fmt.Sprintf("manifest %s: %v", dgst, err)
		return p
	}
	p.Config = Blob{Digest: m.Config.Digest, MediaType: m.Config.MediaType, Size: m.Config.Size}
	p.Size = m.Config.Size
	for _, l := range m.Layers {
		p.Layers = append(p.Layers, Blob{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size})
		p.Size += l.Size
	}
	ce, err := s.config(ctx, repo, m.Config)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	if ce.err != "" {
		p.Err = ce.err
		return p
	}
	p.Name = ce.name
	p.Info = ce.info
	return p
}

// config reads the config d once: parsed configs are cached by digest.
func (s *Site) config(ctx context.Context, repo distribution.Repository, d v1.Descriptor) (*configEntry, error) {
	if ce := s.cache.getConfig(d.Digest); ce != nil {
		return ce, nil
	}
	if d.Size > maxJSON {
		return nil, fmt.Errorf("config %s: %d bytes, more than the page reads", d.Digest, d.Size)
	}
	// Get reads the blob whole (Open would buffer 4 MiB for each).
	data, err := repo.Blobs(ctx).Get(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", d.Digest, err)
	}
	ce := &configEntry{}
	var cfg v1.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		ce.err = fmt.Sprintf("config %s: %v", d.Digest, err)
	} else {
		ce.name = strings.Clone(clip(platformName(cfg.OS, cfg.Architecture, cfg.Variant)))
		ce.info = configInfo(&cfg)
	}
	s.cache.putConfig(d.Digest, ce)
	return ce, nil
}

// configInfo is what a page shows of cfg: every string its own copy of at
// most maxValue bytes, maxInfo bytes in all (the rest counted in Omitted),
// so that nothing kept holds on to the config read.
func configInfo(cfg *v1.Image) ConfigInfo {
	c := cfg.Config
	info := ConfigInfo{User: strings.Clone(clip(c.User)), WorkingDir: strings.Clone(clip(c.WorkingDir))}
	if cfg.Created != nil {
		info.Created = cfg.Created.UTC().Format(time.RFC3339)
	}
	budget := maxInfo
	take := func(s string) (string, bool) {
		s = clip(s)
		if len(s) > budget {
			info.Omitted++
			return "", false
		}
		budget -= len(s)
		return strings.Clone(s), true
	}
	words := func(in []string) (out []string) {
		for _, w := range in {
			if w, ok := take(w); ok {
				out = append(out, w)
			}
		}
		return out
	}
	info.Entrypoint, info.Cmd = words(c.Entrypoint), words(c.Cmd)
	keys := make([]string, 0, len(c.Labels))
	for k := range c.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key, ok := take(k)
		if !ok {
			continue
		}
		if v, ok := take(c.Labels[k]); ok {
			info.Labels = append(info.Labels, Label{key, v})
		} else {
			budget += len(key)
		}
	}
	info.Env = words(c.Env)
	ports := make([]string, 0, len(c.ExposedPorts))
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	info.Ports = words(ports)
	return info
}

// clip cuts s to maxValue bytes (at a character boundary) and says so.
func clip(s string) string {
	if len(s) <= maxValue {
		return s
	}
	n := maxValue
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("… [cut: %d bytes in all]", len(s))
}

// bytes estimates what the entry holds.
func (ce *configEntry) bytes() int64 {
	return 256 + int64(len(ce.name)+len(ce.err)) + ce.info.bytes()
}

func (info *ConfigInfo) bytes() int64 {
	n := int64(len(info.User) + len(info.WorkingDir) + len(info.Created))
	for _, l := range [][]string{info.Entrypoint, info.Cmd, info.Env, info.Ports} {
		for _, s := range l {
			n += 16 + int64(len(s))
		}
	}
	for _, l := range info.Labels {
		n += 32 + int64(len(l.Key)+len(l.Value))
	}
	return n
}

// bytes estimates what im holds (platforms of an index share their
// config's strings; each is counted, which overestimates).
func (im *Image) bytes() int64 {
	n := int64(256)
	for _, p := range im.Platforms {
		n += 256 + int64(len(p.Err)) + 128*int64(len(p.Layers)) + p.Info.bytes()
	}
	return n
}

func platformName(os, arch, variant string) string {
	n := os + "/" + arch
	if variant != "" {
		n += "/" + variant
	}
	if n == "/" {
		return ""
	}
	return n
}

// platformNames lists the architectures of im (with variant), for the index.
func (im *Image) platformNames() []string {
	var out []string
	for _, p := range im.Platforms {
		n := p.Name
		if _, arch, ok := strings.Cut(n, "/"); ok && strings.HasPrefix(n, "linux/") {
			n = arch
		}
		if n == "" {
			n = "?"
		}
		out = append(out, n)
	}
	if im.Omitted > 0 {
		out = append(out, fmt.Sprintf("%d more", im.Omitted))
	}
	return out
}

// imageHref is the image page of repo:tag.
func imageHref(repo, tag string) string {
	return "/ui/" + repo + ":" + tag
}
