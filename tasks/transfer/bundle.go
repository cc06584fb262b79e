package transfer

import (
	"context"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/ocilayout"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// MaxMissingShown bounds the blobs a refused differential import names.
const MaxMissingShown = 10

// ImportResult is what ImportBundle wrote.
type ImportResult struct {
	File string `json:"file"`
	// Kind is "full" or "differential".
	Kind      string        `json:"kind"`
	Images    []ImageResult `json:"images"`
	BytesSent int64         `json:"bytes_sent"`
}

// MissingBlobsError refuses a differential bundle whose base the
// registry does not hold.
type MissingBlobsError struct {
	File    string
	Missing []string // "yocto/app sha256:…"
}

func (e *MissingBlobsError) Error() string {
	shown := e.Missing
	more := ""
	if len(shown) > MaxMissingShown {
		more = fmt.Sprintf(" and %d more", len(shown)-MaxMissingShown)
		shown = shown[:MaxMissingShown]
	}
	return fmt.Sprintf("bundle %s is differential and the registry lacks %d blob(s) it leaves out: %s%s (import the bundle it was made --since first)", e.File, len(e.Missing), strings.Join(shown, ", "), more)
}

// IsBundle reports whether file is an OCI layout archive written by
// Export (its index.json carries the bundle annotation).
func IsBundle(ctx context.Context, file string) bool {
	l, err := ocilayout.OpenArchive(ctx, file)
	if err != nil {
		return false
	}
	defer l.Close()
	im, err := l.Index().IndexManifest()
	return err == nil && isBundleIndex(im)
}

// ImportBundle writes every image of the bundle file (tags, platforms,
// referrers, attached tags) into t's namespace. Blobs a differential
// bundle leaves out must be in the registry already: otherwise it is
// refused, naming them, before anything is written. Every blob read is
// checked against its digest.
func ImportBundle(ctx context.Context, t *registry.Target, file string, ev events.Sink) (*ImportResult, error) {
	l, err := ocilayout.OpenArchive(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	defer l.Close()
	im, err := l.Index().IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", file, err)
	}
	if !isBundleIndex(im) {
		return nil, fmt.Errorf("%s: %w", file, errNotBundle)
	}
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	res := &ImportResult{File: file, Kind: im.Annotations[BundleAnnotation]}
	imgs, err := walkBundle(ctx, l, file)
	if err != nil {
		return nil, err
	}
	d := newDest(t, ev)
	open := func(ctx context.Context, b v1.Descriptor) (io.ReadCloser, error) {
		rc, err := l.Blob(b)
		if err != nil {
			return nil, err
		}
		return newVerifying(rc, b, "bundle "+file), nil
	}
	var jobs []*job
	absent := &MissingBlobsError{File: file}
	for _, img := range imgs {
		repo, err := t.Repo(img.Name)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: image %q: %w", file, img.Name, err)
		}
		j, err := d.newJob(ctx, img, repo, destTags(img, nil), open)
		if err != nil {
			return nil, err
		}
		for _, b := range j.missing {
			if !l.HasBlob(b.Digest) {
				absent.Missing = append(absent.Missing, repo.RepositoryStr()+" "+b.Digest.String())
			}
		}
		jobs = append(jobs, j)
	}
	if len(absent.Missing) > 0 {
		return nil, absent
	}
	if res.Images, err = d.write(ctx, jobs); err != nil {
		return res, err
	}
	d.finish()
	res.BytesSent = d.sent.Load()
	return res, nil
}

// walkBundle reads the images of a bundle from its index.json entries.
func walkBundle(ctx context.Context, l *ocilayout.Layout, file string) ([]*Image, error) {
	total := 0
	byName := map[string]*walker{}
	var out []*Image
	for _, e := range l.Manifests() {
		imgName := e.Annotations[ImageAnnotation]
		if imgName == "" {
			return nil, fmt.Errorf("bundle %s: index.json entry %s names no image (%s)", file, e.Digest, ImageAnnotation)
		}
		w := byName[imgName]
		if w == nil {
			img := &Image{Name: imgName, Repo: imgName}
			w = newWalker(img, &total)
			w.fetch = func(ctx context.Context, d v1.Descriptor) ([]byte, error) {
				raw, err := l.Document(d)
				if err != nil {
					return nil, fmt.Errorf("bundle %s: %w", file, err)
				}
				return raw, nil
			}
			byName[imgName] = w
			out = append(out, img)
		}
		desc := v1.Descriptor{MediaType: e.MediaType, Digest: e.Digest, Size: e.Size}
		raw, err := w.fetch(ctx, desc)
		if err != nil {
			return nil, err
		}
		if err := w.visit(ctx, desc, raw); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", file, err)
		}
		ref, ok := e.Annotations[RefNameAnnotation]
		if !ok {
			continue
		}
		n, tag, ok := splitRefName(ref)
		if !ok || n != imgName {
			return nil, fmt.Errorf("bundle %s: ref name %q is not %s:<tag>", file, ref, imgName)
		}
		if err := imageref.ValidateTag(tag); err != nil {
			return nil, fmt.Errorf("bundle %s: ref name %q: %w", file, ref, err)
		}
		_, attached := registry.TagSubject(tag)
		w.img.Tags = append(w.img.Tags, Tag{Name: tag, Desc: desc, Attached: attached})
	}
	return out, nil
}
