// Package importer copies third-party images into the local registry:
// from another registry (every platform of a multi-arch image by
// default), from an OCI layout directory, or from an OCI or Docker
// archive, so images can also be imported offline.
package importer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ocireg-tool/ocireg-tool/internal/redact"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/ocilayout"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
	"github.com/ocireg-tool/ocireg-tool/tasks/taglock"
)

// Usage is the import command's usage, shown with usage errors.
const Usage = `Usage: container-registry.sh import <source> [name] [options]

  import docker.io/library/alpine:3.19
  import docker://ghcr.io/org/app:v1 app --src-credsfile ~/.config/ghcr-creds
  import alpine@sha256:... alpine --tag 3.19
  import oci:/path/to/layout[:ref] myimage
  import oci-archive:/path/image.tar myimage
  import docker-archive:/path/image.tar myimage
  import docker.io/library/alpine --platform linux/arm64 --platform linux/amd64`

// Options say what to import.
type Options struct {
	Source string
	Name   string // default: the source's last path element
	Tag    string // default: the source tag, else latest
	// Platforms narrows a multi-arch source ("linux/arm64"); empty: all.
	Platforms []string
	SrcAuth   *regauth.Resolved // nil: anonymous
	// Signer, when set (import --sign), signs what was imported: the tag's
	// manifest and, for an index, every manifest it lists.
	Signer *sign.Signer
}

// Result is what Import copied where.
type Result struct {
	Source    string
	Name      string // image name as given or derived ("alpine")
	Repo      string // repository in the registry ("yocto/alpine")
	Tag       string
	Platforms string // what was copied, e.g. "linux/amd64, linux/arm64"
	Digest    string
	// Signed are the manifests signed (or found signed) with --sign, the
	// tag's first; SigningKey is the key's fingerprint.
	Signed     []sign.Result
	SigningKey string
}

// source is a resolved import source.
type source struct {
	img         v1.Image
	idx         v1.ImageIndex
	defaultName string
	defaultTag  string
	cleanup     func()
}

// Import copies o.Source into <url>/<namespace>/<name>:<tag> of t. The
// registry is checked first, before the source is read.
func Import(ctx context.Context, t *registry.Target, o Options) (*Result, error) {
	plats, err := checkOptions(o)
	if err != nil {
		return nil, err
	}
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	srcAuth := authn.Authenticator(authn.Anonymous)
	if o.SrcAuth != nil {
		srcAuth = o.SrcAuth.Auth
	}
	src, err := open(ctx, o.Source, srcAuth, o.Tag)
	if err != nil && ctx.Err() != nil {
		return nil, stopped(ctx, o.Source)
	}
	if err != nil {
		return nil, err
	}
	defer src.cleanup()
	res, ref, err := destination(t, o, src)
	if err != nil {
		return nil, err
	}
	what, desc, err := selectPlatforms(src, o, plats)
	if err != nil {
		return nil, err
	}
	ropts := t.Options(ctx, remote.WithJobs(4))
	switch w := what.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, w, ropts...)
	case v1.Image:
		err = remote.Write(ref, w, ropts...)
	}
	if err != nil && ctx.Err() != nil {
		return nil, stopped(ctx, o.Source)
	}
	if err != nil {
		return nil, fmt.Errorf("copying %s to %s: %w", o.Source, ref, err)
	}
	res.Platforms = desc
	d, err := what.(interface{ Digest() (v1.Hash, error) }).Digest()
	if err == nil {
		res.Digest = d.String()
	}
	if o.Signer == nil {
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	if err := signImported(ctx, t, o.Signer, ref.Context(), d, what, res); err != nil {
		return nil, fmt.Errorf("imported %s, but signing failed: %w", ref, err)
	}
	return res, nil
}

// signImported signs d, the imported tag's manifest, and for an index
// every manifest it lists, under the registry's tag lock.
func signImported(ctx context.Context, t *registry.Target, s *sign.Signer, repo name.Repository, d v1.Hash, what any, res *Result) error {
	digests := []v1.Hash{d}
	if idx, ok := what.(v1.ImageIndex); ok {
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, m := range im.Manifests {
			digests = append(digests, m.Digest)
		}
	}
	lock, err := taglock.Open(t.Config)
	if err != nil {
		return err
	}
	defer lock.Close()
	res.SigningKey = s.Key.Fingerprint
	for _, d := range digests {
		r, err := s.Sign(ctx, repo, d, lock)
		if err != nil {
			return err
		}
		res.Signed = append(res.Signed, r)
	}
	return nil
}

// checkOptions checks the options that need no source or registry and
// returns the platforms asked for.
func checkOptions(o Options) ([]v1.Platform, error) {
	if o.Source == "" {
		return nil, &tasks.UsageError{Msg: "import needs a source image", Usage: Usage}
	}
	if !isFileSource(o.Source) {
		if shown := redact.URL(o.Source); shown != o.Source {
			return nil, &tasks.UsageError{Msg: fmt.Sprintf("source %q: credentials do not belong in the reference (it shows in logs and ps); use --src-creds USER with --src-password-stdin, --src-credsfile or --src-authfile", shown), Usage: Usage}
		}
	}
	var plats []v1.Platform
	for _, p := range o.Platforms {
		pl, err := platform.Parse(p)
		if err != nil {
			return nil, &tasks.UsageError{Msg: "--platform " + err.Error(), Usage: Usage}
		}
		plats = append(plats, pl)
	}
	if o.Tag != "" {
		if err := imageref.ValidateTag(o.Tag); err != nil {
			return nil, &tasks.UsageError{Msg: "--tag: " + err.Error(), Usage: Usage}
		}
	}
	return plats, nil
}

// destination is where src goes: the name and tag given, else the
// source's, else latest; the result names them.
func destination(t *registry.Target, o Options, src *source) (*Result, name.Tag, error) {
	imgName := o.Name
	if imgName == "" {
		imgName = src.defaultName
	}
	tag := o.Tag
	if tag == "" {
		tag = src.defaultTag
	}
	if tag == "" {
		tag = "latest"
	}
	if err := imageref.ValidateTag(tag); err != nil {
		return nil, name.Tag{}, &tasks.UsageError{Msg: fmt.Sprintf("the tag of source %q: %v; give one with --tag", o.Source, err), Usage: Usage}
	}
	repo, err := t.Repo(imgName)
	if err != nil {
		return nil, name.Tag{}, &tasks.UsageError{Msg: fmt.Sprintf("image name %q: %v", imgName, err), Usage: Usage}
	}
	return &Result{Source: o.Source, Name: imgName, Repo: repo.RepositoryStr(), Tag: tag}, repo.Tag(tag), nil
}

// selectPlatforms returns what to copy: an index narrowed to plats, or
// the single image when it matches them; and the platforms as text.
func selectPlatforms(src *source, o Options, plats []v1.Platform) (remote.Taggable, string, error) {
	if src.idx != nil {
		idx, list, err := filterIndex(src.idx, plats)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", o.Source, err)
		}
		return idx, list, nil
	}
	cf, err := registry.ConfigFile(src.img)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", o.Source, err)
	}
	p := platform.OfConfig(cf)
	if len(plats) > 0 && !matchAny(p, plats) {
		return nil, "", fmt.Errorf("%s is a single %s image; --platform %s does not match", o.Source, platform.String(p), strings.Join(o.Platforms, ", "))
	}
	return src.img, platform.String(p), nil
}

// stopped is the error of an import whose context ended (a signal). The
// tag is written last, after everything it references, so it is either
// complete or not written.
func stopped(ctx context.Context, source string) error {
	return fmt.Errorf("import of %s stopped before it finished: %w", source, context.Cause(ctx))
}

// open resolves a source string.
func open(ctx context.Context, s string, auth authn.Authenticator, tag string) (*source, error) {
	switch {
	case strings.HasPrefix(s, "oci:"):
		return openLayout(ctx, strings.TrimPrefix(s, "oci:"))
	case strings.HasPrefix(s, "oci-archive:"):
		return openOCIArchive(ctx, strings.TrimPrefix(s, "oci-archive:"))
	case strings.HasPrefix(s, "docker-archive:"):
		return openDockerArchive(strings.TrimPrefix(s, "docker-archive:"))
	}
	return openRemote(ctx, s, auth, tag)
}

// isFileSource reports whether s names a layout or archive, not a
// registry reference.
func isFileSource(s string) bool {
	for _, p := range []string{"oci:", "oci-archive:", "docker-archive:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func nop() {}

// openLayout opens "DIR[:REF]", an OCI layout directory.
func openLayout(ctx context.Context, arg string) (*source, error) {
	dir, ref := splitRef(arg)
	l, err := ocilayout.Open(ctx, dir)
	if err != nil {
		return nil, err
	}
	src, err := fromLayout(l, ref)
	if err != nil {
		return nil, err
	}
	src.defaultName = layoutName(dir)
	src.cleanup = nop
	return src, nil
}

// openOCIArchive opens "FILE[:REF]", an OCI layout in a tar archive, read
// in place: nothing is extracted, so an archive cannot fill a disk with
// data it does not hold (a sparse entry is refused).
func openOCIArchive(ctx context.Context, arg string) (*source, error) {
	file, ref := splitRef(arg)
	l, err := ocilayout.OpenArchive(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("oci-archive %s: %w", file, err)
	}
	src, err := fromLayout(l, ref)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("oci-archive %s: %w", file, err)
	}
	src.defaultName = archiveName(file)
	src.cleanup = func() { l.Close() }
	return src, nil
}

// openDockerArchive opens "FILE[:REF]", a `docker save` archive.
func openDockerArchive(arg string) (*source, error) {
	file, ref := splitRef(arg)
	var tagp *name.Tag
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return nil, fmt.Errorf("docker-archive %s: reference %q: %w", file, ref, err)
		}
		tagp = &t
	}
	img, err := tarball.ImageFromPath(file, tagp)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", file, err)
	}
	if _, err := img.Manifest(); err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", file, err)
	}
	src := &source{img: img, defaultName: archiveName(file), cleanup: nop}
	if tagp != nil {
		src.defaultName = lastElem(tagp.RepositoryStr())
		src.defaultTag = tagp.TagStr()
	}
	return src, nil
}

// openRemote opens a registry reference (`docker://REF` or plain); a
// digest reference needs the tag to create.
func openRemote(ctx context.Context, s string, auth authn.Authenticator, tag string) (*source, error) {
	refStr := strings.TrimPrefix(s, "docker://")
	ref, err := name.ParseReference(refStr)
	if err != nil {
		return nil, &tasks.UsageError{Msg: fmt.Sprintf("source %q: %v", s, err), Usage: Usage}
	}
	src := &source{defaultName: lastElem(ref.Context().RepositoryStr()), cleanup: nop}
	switch r := ref.(type) {
	case name.Tag:
		src.defaultTag = r.TagStr()
	case name.Digest:
		if tag == "" {
			return nil, &tasks.UsageError{Msg: fmt.Sprintf("source %q is a digest reference: give the tag to create with --tag", s), Usage: Usage}
		}
	}
	d, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(registry.LimitAnswers(remote.DefaultTransport)))
	if err != nil {
		return nil, fmt.Errorf("reading source %s: %w", refStr, err)
	}
	if d.MediaType.IsIndex() {
		src.idx, err = d.ImageIndex()
	} else {
		src.img, err = d.Image()
	}
	if err != nil {
		return nil, fmt.Errorf("reading source %s: %w", refStr, err)
	}
	return src, nil
}

// splitRef splits "path[:ref]"; a path that exists as given wins, then
// the shortest prefix that exists (a bundle's ref names are name:tag).
func splitRef(s string) (string, string) {
	if _, err := os.Stat(s); err == nil {
		return s, ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] != ':' || i == 0 {
			continue
		}
		if _, err := os.Stat(s[:i]); err == nil {
			return s[:i], s[i+1:]
		}
	}
	if i := strings.LastIndex(s, ":"); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// fromLayout picks the entry of an OCI layout: the one whose ref-name is
// ref, or the only one. Every blob it reaches is checked before the first
// byte goes out.
func fromLayout(l *ocilayout.Layout, ref string) (*source, error) {
	entries := l.Manifests()
	var chosen *v1.Descriptor
	var refs []string
	for i, d := range entries {
		r := d.Annotations[deploy.RefNameAnnotation]
		refs = append(refs, r)
		if (ref != "" && r == ref) || (ref == "" && len(entries) == 1) {
			chosen = &entries[i]
		}
	}
	src := &source{defaultTag: ref}
	switch {
	case chosen == nil && ref == "" && allImages(entries):
		// A flat multi-arch layout: index.json itself is the index.
		src.idx = l.Index()
		if err := l.CheckIndex(src.idx); err != nil {
			return nil, err
		}
		return src, nil
	case chosen == nil && ref != "":
		return nil, fmt.Errorf("oci layout %s has no entry with ref name %q (refs: %s)", l.Path, ref, strings.Join(refs, ", "))
	case chosen == nil:
		return nil, fmt.Errorf("oci layout %s holds %d entries; pick one with oci:%s:<ref> (refs: %s)", l.Path, len(entries), l.Path, strings.Join(refs, ", "))
	}
	if err := l.CheckBlob(chosen.Digest, chosen.Size); err != nil {
		return nil, err
	}
	var err error
	if chosen.MediaType.IsIndex() {
		if src.idx, err = l.ImageIndex(*chosen); err != nil {
			return nil, err
		}
		err = l.CheckIndex(src.idx)
	} else {
		if src.img, err = l.Image(*chosen); err != nil {
			return nil, err
		}
		err = l.CheckImage(src.img)
	}
	if err != nil {
		return nil, err
	}
	return src, nil
}

func allImages(ds []v1.Descriptor) bool {
	for _, d := range ds {
		if !d.MediaType.IsImage() || d.Platform == nil {
			return false
		}
	}
	return len(ds) > 0
}

// filterIndex keeps the image entries of idx matching plats (all when
// empty) and describes them.
func filterIndex(idx v1.ImageIndex, plats []v1.Platform) (v1.ImageIndex, string, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	var have, kept []string
	var adds []mutate.IndexAddendum
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		p := platform.Normalize(*d.Platform)
		have = append(have, platform.String(p))
		if len(plats) == 0 || matchAny(p, plats) {
			kept = append(kept, platform.String(p))
			if len(plats) > 0 {
				child, err := idx.Image(d.Digest)
				if err != nil {
					return nil, "", err
				}
				adds = append(adds, mutate.IndexAddendum{Add: child, Descriptor: d})
			}
		}
	}
	if len(kept) == 0 {
		return nil, "", fmt.Errorf("no platform matches (available: %s)", strings.Join(have, ", "))
	}
	if len(plats) == 0 {
		return idx, strings.Join(kept, ", "), nil
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, "", err
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, mt), adds...), strings.Join(kept, ", "), nil
}

func matchAny(p v1.Platform, plats []v1.Platform) bool {
	return slices.ContainsFunc(plats, func(want v1.Platform) bool { return platform.Matches(p, want) })
}

func lastElem(repo string) string {
	return repo[strings.LastIndex(repo, "/")+1:]
}

func layoutName(dir string) string {
	base := filepath.Base(filepath.Clean(dir))
	if n, _, _, ok := deploy.ParseName(base, filepath.Base(filepath.Dir(filepath.Clean(dir)))); ok {
		return n
	}
	return strings.ToLower(base)
}

func archiveName(file string) string {
	base := filepath.Base(file)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".oci"} {
		base = strings.TrimSuffix(base, ext)
	}
	if n, _, _, ok := deploy.ParseName(base+"-oci", ""); ok && strings.HasSuffix(base, "-oci") {
		return n
	}
	return strings.ToLower(base)
}

// SourceRegistry is the registry host of a source string, for credential
// lookups ("" for layouts and archives).
func SourceRegistry(s string) string {
	if strings.HasPrefix(s, "oci:") || strings.HasPrefix(s, "oci-archive:") || strings.HasPrefix(s, "docker-archive:") {
		return ""
	}
	ref, err := name.ParseReference(strings.TrimPrefix(s, "docker://"))
	if err != nil {
		return ""
	}
	return ref.Context().RegistryStr()
}
