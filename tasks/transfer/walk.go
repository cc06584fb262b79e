package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// manifestFields are the fields of a manifest or index the walk follows.
type manifestFields struct {
	MediaType types.MediaType `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
	Subject   *v1.Descriptor  `json:"subject"`
}

// walker collects the Images of one run.
type walker struct {
	// fetch returns the manifest desc names in the image being walked.
	fetch func(ctx context.Context, desc v1.Descriptor) ([]byte, error)
	// referrers lists the referrers of a manifest (nil: none to find).
	referrers func(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error)
	// attached are the sha256-<hex>.<suffix> tags of the repository.
	attached map[v1.Hash][]string
	// resolve reads an attached tag.
	resolve func(ctx context.Context, tag string) (v1.Descriptor, []byte, error)

	img   *Image
	seen  map[v1.Hash]bool
	blobs map[v1.Hash]bool
	total *int // manifests of the whole run
}

func newWalker(img *Image, total *int) *walker {
	return &walker{img: img, seen: map[v1.Hash]bool{}, blobs: map[v1.Hash]bool{}, total: total}
}

// visit adds the manifest desc (raw its bytes) with everything below it
// and everything that refers to it.
func (w *walker) visit(ctx context.Context, desc v1.Descriptor, raw []byte) error {
	if w.seen[desc.Digest] {
		return nil
	}
	w.seen[desc.Digest] = true
	if *w.total++; *w.total > MaxManifests {
		return fmt.Errorf("more than %d manifests to copy (tags, platforms and referrers together); select fewer images or tags", MaxManifests)
	}
	var m manifestFields
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if desc.MediaType == "" {
		desc.MediaType = m.MediaType
	}
	for _, child := range m.Manifests {
		craw, err := w.fetch(ctx, child)
		if err != nil {
			return err
		}
		if err := w.visit(ctx, v1.Descriptor{MediaType: child.MediaType, Digest: child.Digest, Size: child.Size}, craw); err != nil {
			return err
		}
	}
	if m.Config != nil {
		w.blob(*m.Config)
	}
	for _, l := range m.Layers {
		w.blob(l)
	}
	w.img.Manifests = append(w.img.Manifests, Manifest{Desc: v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: int64(len(raw))}, Raw: raw, Subject: m.Subject})
	if w.referrers != nil {
		refs, err := w.referrers(ctx, desc.Digest)
		if err != nil {
			return err
		}
		for _, r := range refs {
			rraw, err := w.fetch(ctx, r)
			if err != nil {
				return err
			}
			if err := w.visit(ctx, v1.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size}, rraw); err != nil {
				return err
			}
		}
	}
	for _, tag := range w.attached[desc.Digest] {
		d, traw, err := w.resolve(ctx, tag)
		if err != nil {
			return err
		}
		if err := w.visit(ctx, d, traw); err != nil {
			return err
		}
		w.img.Tags = append(w.img.Tags, Tag{Name: tag, Desc: d, Attached: true})
	}
	return nil
}

func (w *walker) blob(d v1.Descriptor) {
	if w.blobs[d.Digest] {
		return
	}
	w.blobs[d.Digest] = true
	w.img.Blobs = append(w.img.Blobs, v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
}

// walkRegistry reaches everything the selection names in t's registry.
func walkRegistry(ctx context.Context, t *registry.Target, sel Selection, usage string) ([]*Image, error) {
	reqs, err := sel.parse(usage)
	if err != nil {
		return nil, err
	}
	total := 0
	walkers := map[string]*repoWalker{}
	var out []*Image
	for _, rq := range reqs {
		repo, err := t.Repo(rq.name)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", rq.name, err)
		}
		rw := walkers[repo.RepositoryStr()]
		if rw == nil {
			img := &Image{Name: rq.name, Repo: repo.RepositoryStr()}
			if rw, err = newRepoWalker(ctx, t, repo, img, &total); err != nil {
				return nil, fmt.Errorf("image %s: %w", rq.name, err)
			}
			walkers[img.Repo] = rw
			out = append(out, img)
		}
		tags, err := rw.selectTags(rq, sel)
		if err != nil {
			return nil, err
		}
		for _, tag := range tags {
			if err := rw.addTag(ctx, tag); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// repoWalker walks the tags of one repository of a registry.
type repoWalker struct {
	*walker
	repo name.Repository
	// tags are the repository's tags, the attached ones left out.
	tags []string
	get  func(ref name.Reference) (v1.Descriptor, []byte, error)
}

func newRepoWalker(ctx context.Context, t *registry.Target, repo name.Repository, img *Image, total *int) (*repoWalker, error) {
	all, err := t.Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	rw := &repoWalker{walker: newWalker(img, total), repo: repo}
	rw.attached = map[v1.Hash][]string{}
	for _, tag := range all {
		if h, ok := registry.TagSubject(tag); ok {
			if !registry.IsFallbackTag(tag) { // the tag schema's own index is rebuilt, not copied
				rw.attached[h] = append(rw.attached[h], tag)
			}
			continue
		}
		rw.tags = append(rw.tags, tag)
	}
	slices.Sort(rw.tags)
	opts := t.Options(ctx)
	rw.get = func(ref name.Reference) (v1.Descriptor, []byte, error) {
		d, err := remote.Get(ref, opts...)
		if err != nil {
			return v1.Descriptor{}, nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		return v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, d.Manifest, nil
	}
	rw.fetch = func(ctx context.Context, d v1.Descriptor) ([]byte, error) {
		_, raw, err := rw.get(repo.Digest(d.Digest.String()))
		return raw, err
	}
	rw.resolve = func(ctx context.Context, tag string) (v1.Descriptor, []byte, error) {
		return rw.get(repo.Tag(tag))
	}
	rw.referrers = func(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error) {
		r, err := t.Referrers(ctx, repo, subject)
		if err != nil {
			return nil, err
		}
		return r.Manifests, nil
	}
	return rw, nil
}

// selectTags are the tags of one image argument.
func (rw *repoWalker) selectTags(rq request, sel Selection) ([]string, error) {
	if rq.tag != "" {
		if !slices.Contains(rw.tags, rq.tag) {
			return nil, fmt.Errorf("%s:%s: %w", rw.repo.RepositoryStr(), rq.tag, registry.ErrImageNotFound)
		}
		return []string{rq.tag}, nil
	}
	var out []string
	for _, tag := range rw.tags {
		if ok, _ := path.Match(sel.TagPattern, tag); sel.AllTags || ok {
			out = append(out, tag)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("image %s: no tag matches %q (tags: %s)", rw.img.Name, sel.TagPattern, strings.Join(rw.tags, ", "))
	}
	return out, nil
}

// addTag adds tag and everything it reaches (once, however often named).
func (rw *repoWalker) addTag(ctx context.Context, tag string) error {
	if slices.ContainsFunc(rw.img.Tags, func(t Tag) bool { return t.Name == tag }) {
		return nil
	}
	d, raw, err := rw.get(rw.repo.Tag(tag))
	if err != nil {
		return err
	}
	if err := rw.visit(ctx, d, raw); err != nil {
		return err
	}
	rw.img.Tags = append(rw.img.Tags, Tag{Name: tag, Desc: d})
	return nil
}

// registryBlobs opens the blobs of repo in t's registry. Each is checked
// against its declared size as it is read, and against its digest when
// hash is set: a registry a blob goes on to checks the digest itself, so
// promote leaves it to the destination; a bundle has nobody else to.
func registryBlobs(ctx context.Context, t *registry.Target, repo string, hash bool) (opener, error) {
	r, err := t.Repo(repo)
	if err != nil {
		return nil, err
	}
	client, err := t.Client(ctx, r, transport.PullScope, nil)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, b v1.Descriptor) (io.ReadCloser, error) {
		u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", r.Scheme(), r.RegistryStr(), r.RepositoryStr(), b.Digest)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("reading blob %s of %s: %w", b.Digest, repo, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("reading blob %s of %s: %s", b.Digest, repo, resp.Status)
		}
		return &verifying{r: resp.Body, desc: b, what: repo, h: hashOrNot(hash)}, nil
	}, nil
}

// hashOrNot is a sha256 hash, or nil when the digest is not to be checked.
func hashOrNot(on bool) hash.Hash {
	if on {
		return sha256.New()
	}
	return nil
}

// BlobError says a blob read is not what its descriptor declares.
type BlobError struct{ msg string }

func (e *BlobError) Error() string { return e.msg }

// verifying checks, as it is read, that a blob is its declared size and
// (h set) digest; what names the blob in errors.
type verifying struct {
	r    io.ReadCloser
	desc v1.Descriptor
	what string
	h    hash.Hash
	n    int64
}

// newVerifying wraps r, the bytes of blob desc.
func newVerifying(r io.ReadCloser, desc v1.Descriptor, what string) io.ReadCloser {
	return &verifying{r: r, desc: desc, what: what, h: sha256.New()}
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if v.n > v.desc.Size {
		return n, &BlobError{fmt.Sprintf("%s: blob %s is longer than the %d bytes declared", v.what, v.desc.Digest, v.desc.Size)}
	}
	if errors.Is(err, io.EOF) {
		if v.n != v.desc.Size {
			return n, &BlobError{fmt.Sprintf("%s: blob %s is %d bytes, %d declared (truncated)", v.what, v.desc.Digest, v.n, v.desc.Size)}
		}
		if v.h == nil {
			return n, err
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.desc.Digest.Hex {
			return n, &BlobError{fmt.Sprintf("%s: blob %s does not match its digest (content hashes to sha256:%s)", v.what, v.desc.Digest, got)}
		}
	}
	return n, err
}

func (v *verifying) Close() error { return v.r.Close() }
