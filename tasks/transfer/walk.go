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
	"path"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	byRepo := map[string]*Image{}
	var out []*Image
	for _, rq := range reqs {
		repo, err := t.Repo(rq.name)
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", rq.name, err)
		}
		img := byRepo[repo.RepositoryStr()]
		if img == nil {
			img = &Image{Name: rq.name, Repo: repo.RepositoryStr()}
			byRepo[img.Repo] = img
			out = append(out, img)
		}
		if err := walkRequest(ctx, t, repo, rq, sel, img, &total); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walkRequest adds the tags of one image argument to img.
func walkRequest(ctx context.Context, t *registry.Target, repo name.Repository, rq request, sel Selection, img *Image, total *int) error {
	all, err := t.Tags(ctx, repo)
	if err != nil {
		return fmt.Errorf("image %s: %w", rq.name, err)
	}
	var tags []string
	attached := map[v1.Hash][]string{}
	for _, tag := range all {
		if h, ok := registry.TagSubject(tag); ok {
			if !registry.IsFallbackTag(tag) { // the tag schema's own index is rebuilt, not copied
				attached[h] = append(attached[h], tag)
			}
			continue
		}
		switch {
		case rq.tag != "":
		case sel.AllTags:
			tags = append(tags, tag)
		default:
			if ok, _ := path.Match(sel.TagPattern, tag); ok {
				tags = append(tags, tag)
			}
		}
	}
	if rq.tag != "" {
		if !slices.Contains(all, rq.tag) {
			return fmt.Errorf("%s:%s: %w", repo.RepositoryStr(), rq.tag, registry.ErrImageNotFound)
		}
		tags = []string{rq.tag}
	}
	if len(tags) == 0 {
		return fmt.Errorf("image %s: no tag matches %q (tags: %v)", rq.name, sel.TagPattern, all)
	}
	slices.Sort(tags)
	w := newWalker(img, total)
	w.attached = attached
	opts := t.Options(ctx)
	get := func(ref name.Reference) (v1.Descriptor, []byte, error) {
		d, err := remote.Get(ref, opts...)
		if err != nil {
			return v1.Descriptor{}, nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		return d.Descriptor, d.Manifest, nil
	}
	w.fetch = func(ctx context.Context, d v1.Descriptor) ([]byte, error) {
		_, raw, err := get(repo.Digest(d.Digest.String()))
		return raw, err
	}
	w.resolve = func(ctx context.Context, tag string) (v1.Descriptor, []byte, error) {
		return get(repo.Tag(tag))
	}
	w.referrers = func(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error) {
		r, err := t.Referrers(ctx, repo, subject)
		if err != nil {
			return nil, err
		}
		return r.Manifests, nil
	}
	for _, tag := range tags {
		d, raw, err := get(repo.Tag(tag))
		if err != nil {
			return err
		}
		if err := w.visit(ctx, d, raw); err != nil {
			return err
		}
		img.Tags = append(img.Tags, Tag{Name: tag, Desc: v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}})
	}
	return nil
}

// BlobError says a blob read is not what its descriptor declares.
type BlobError struct{ msg string }

func (e *BlobError) Error() string { return e.msg }

// verifying checks, as it is read, that a blob is its declared size and
// digest; what names the blob in errors.
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
	v.h.Write(p[:n])
	if v.n > v.desc.Size {
		return n, &BlobError{fmt.Sprintf("%s: blob %s is longer than the %d bytes declared", v.what, v.desc.Digest, v.desc.Size)}
	}
	if errors.Is(err, io.EOF) {
		if v.n != v.desc.Size {
			return n, &BlobError{fmt.Sprintf("%s: blob %s is %d bytes, %d declared (truncated)", v.what, v.desc.Digest, v.n, v.desc.Size)}
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.desc.Digest.Hex {
			return n, &BlobError{fmt.Sprintf("%s: blob %s does not match its digest (content hashes to sha256:%s)", v.what, v.desc.Digest, got)}
		}
	}
	return n, err
}

func (v *verifying) Close() error { return v.r.Close() }
