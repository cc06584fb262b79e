package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// blobJobs is how many blobs go to a registry at once, imageJobs how
// many images have their manifests and tags written at once.
const (
	blobJobs  = 8
	imageJobs = 4
)

// Progress reports the bytes moved so far of the blobs a run moves.
type Progress struct {
	Done, Total int64
	// Finished is set on the last report.
	Finished bool
}

// ImageDone reports one image written.
type ImageDone struct{ Image ImageResult }

// ImageResult is what a run wrote of one image.
type ImageResult struct {
	// Source is the repository the image came from ("yocto/app", or the
	// name in a bundle); Repo where it went.
	Source    string      `json:"source"`
	Repo      string      `json:"repository"`
	Tags      []TagResult `json:"tags"`
	Manifests int         `json:"manifests"`
	// ManifestsWritten were sent; the others the destination held.
	ManifestsWritten int `json:"manifests_written"`
	Referrers        int `json:"referrers"`
	Blobs            int `json:"blobs"`
	BlobsUploaded    int `json:"blobs_uploaded"`
	BlobsMounted     int `json:"blobs_mounted"`
	BlobsPresent     int `json:"blobs_present"`
	// BytesUploaded counts the blob bytes sent.
	BytesUploaded int64 `json:"bytes_uploaded"`
}

// TagResult is one tag written.
type TagResult struct {
	Source    string `json:"source_tag"`
	Tag       string `json:"tag"`
	Digest    string `json:"digest"`
	Unchanged bool   `json:"unchanged"`
	// Attached is a sha256-<hex>.<suffix> tag (a signature...).
	Attached bool `json:"attached,omitempty"`
}

// tagDest is a tag to write: the source tag and its new name.
type tagDest struct {
	src  Tag
	name string
}

// opener opens the bytes of a blob of the image being written.
type opener func(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)

// meter counts the blob bytes a run moves and reports them as Progress.
type meter struct {
	ev                    events.Sink
	done, total, lastEmit atomic.Int64
}

// add counts n more bytes moved and emits a report at most every 100 ms.
func (m *meter) add(n int64) {
	done := m.done.Add(n)
	now := time.Now().UnixMilli()
	last := m.lastEmit.Load()
	if now-last >= 100 && m.lastEmit.CompareAndSwap(last, now) {
		m.ev.Emit(Progress{Done: done, Total: m.total.Load()})
	}
}

// finish emits the last report.
func (m *meter) finish() {
	m.ev.Emit(Progress{Done: m.done.Load(), Total: m.total.Load(), Finished: true})
}

// progressReader reports what is read through it.
type progressReader struct {
	rc io.ReadCloser
	m  *meter
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.m.add(int64(n))
	return n, err
}

func (r *progressReader) Close() error { return r.rc.Close() }

// dest is a registry a run writes to.
type dest struct {
	*meter
	t *registry.Target
	// sent counts the request bodies sent (blobs and manifests).
	sent *atomic.Int64
	// mountFrom are repositories of the registry that hold blobs already
	// (promote into another namespace of the source registry).
	mountFrom map[v1.Hash]name.Repository
	// api is set when the registry answered the referrers API.
	api atomic.Bool
}

// newDest wraps t's transport so the bytes sent are counted.
func newDest(t *registry.Target, ev events.Sink) *dest {
	d := &dest{meter: &meter{ev: events.Or(ev)}, sent: &atomic.Int64{}, mountFrom: map[v1.Hash]name.Repository{}}
	d.t = t.WithTransport(registry.CountSent(t.Transport, d.sent))
	return d
}

// layer is a blob as go-containerregistry writes it.
type layer struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
}

func (l *layer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *layer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *layer) Compressed() (io.ReadCloser, error)  { return l.open() }

// missingBlobs HEADs every blob of img in repo and returns those the
// registry lacks (in img's order).
func (d *dest) missingBlobs(ctx context.Context, repo name.Repository, blobs []v1.Descriptor) ([]v1.Descriptor, error) {
	c, err := d.t.Client(ctx, repo, transport.PushScope, d.t.Transport)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", repo.RepositoryStr(), err)
	}
	have := make([]bool, len(blobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, b := range blobs {
		g.Go(func() error {
			ok, err := registry.BlobExists(gctx, c, repo, b.Digest)
			have[i] = ok
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []v1.Descriptor
	for i, b := range blobs {
		if !have[i] {
			out = append(out, b)
		}
	}
	return out, nil
}

// job is one image to write: where, what the registry lacks, how to read
// its blobs, and what was done.
type job struct {
	img     *Image
	repo    name.Repository
	tags    []tagDest
	missing []v1.Descriptor // blobs the registry lacks (see missingBlobs)
	open    opener
	res     ImageResult
}

// newJob HEADs the blobs of img in repo and counts the missing ones into
// the meter's total.
func (d *dest) newJob(ctx context.Context, img *Image, repo name.Repository, tags []tagDest, open opener) (*job, error) {
	missing, err := d.missingBlobs(ctx, repo, img.Blobs)
	if err != nil {
		return nil, err
	}
	for _, b := range missing {
		d.total.Add(b.Size)
	}
	return &job{img: img, repo: repo, tags: tags, missing: missing, open: open,
		res: ImageResult{Source: img.Repo, Repo: repo.RepositoryStr(), Manifests: len(img.Manifests), Referrers: img.Referrers(),
			Blobs: len(img.Blobs), BlobsPresent: len(img.Blobs) - len(missing)}}, nil
}

// blobTask is one blob to put in a job's repository, mounted from
// another repository of the registry when from is set.
type blobTask struct {
	j    *job
	b    v1.Descriptor
	from *name.Repository
}

// write copies the jobs: first every missing blob of every job at once
// (blobJobs at a time; a blob several repositories lack goes up once and
// is mounted into the others), then per job every manifest it lacks in
// order (a referrer also goes into the referrers tag where the registry
// has no referrers API), then its tags. Tags come last: a run that fails
// leaves no tag naming something incomplete.
func (d *dest) write(ctx context.Context, jobs []*job) ([]ImageResult, error) {
	var first, later []blobTask
	owner := map[v1.Hash]*job{}
	for _, j := range jobs {
		for _, b := range j.missing {
			if o, ok := owner[b.Digest]; ok {
				later = append(later, blobTask{j: j, b: b, from: &o.repo})
				continue
			}
			owner[b.Digest] = j
			t := blobTask{j: j, b: b}
			if from, ok := d.mountFrom[b.Digest]; ok {
				t.from = &from
			}
			first = append(first, t)
		}
	}
	for _, tasks := range [][]blobTask{first, later} {
		if err := d.writeBlobs(ctx, tasks); err != nil {
			return nil, err
		}
	}
	// The images are independent from here on: their manifests and tags
	// go up side by side, each image's in order.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(imageJobs)
	for _, j := range jobs {
		g.Go(func() error {
			if err := d.writeManifests(gctx, j); err != nil {
				return err
			}
			if err := d.writeTags(gctx, j); err != nil {
				return err
			}
			d.ev.Emit(ImageDone{Image: j.res})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]ImageResult, len(jobs))
	for i, j := range jobs {
		out[i] = j.res
	}
	return out, nil
}

// writeBlobs puts the blobs of tasks, blobJobs at a time.
func (d *dest) writeBlobs(ctx context.Context, tasks []blobTask) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobJobs)
	for _, t := range tasks {
		g.Go(func() error {
			var opened atomic.Bool
			l, err := partial.CompressedToLayer(&layer{desc: t.b, open: func() (io.ReadCloser, error) {
				opened.Store(true)
				rc, err := t.j.open(gctx, t.b)
				if err != nil {
					return nil, err
				}
				return &progressReader{rc: rc, m: d.meter}, nil
			}})
			if err != nil {
				return err
			}
			if t.from != nil {
				l = &remote.MountableLayer{Layer: l, Reference: t.from.Digest(t.b.Digest.String())}
			}
			if err := remote.WriteLayer(t.j.repo, l, d.t.Options(gctx)...); err != nil {
				if be := (*BlobError)(nil); errors.As(err, &be) {
					return be // the source is at fault, not the upload
				}
				return fmt.Errorf("copying blob %s to %s: %w", t.b.Digest, t.j.repo.RepositoryStr(), err)
			}
			mu.Lock()
			defer mu.Unlock()
			// A mount sends no body: the blob counts as mounted then.
			if t.from != nil && !opened.Load() {
				t.j.res.BlobsMounted++
				d.add(t.b.Size)
			} else {
				t.j.res.BlobsUploaded++
				t.j.res.BytesUploaded += t.b.Size
			}
			return nil
		})
	}
	return g.Wait()
}

// writeTags points the job's tags at their manifests; a tag that names
// the same digest already is left alone.
func (d *dest) writeTags(ctx context.Context, j *job) error {
	byDigest := map[v1.Hash]Manifest{}
	for _, m := range j.img.Manifests {
		byDigest[m.Desc.Digest] = m
	}
	for _, td := range j.tags {
		m := byDigest[td.src.Desc.Digest]
		tr := TagResult{Source: td.src.Name, Tag: td.name, Digest: m.Desc.Digest.String(), Attached: td.src.Attached}
		ref := j.repo.Tag(td.name)
		head, err := remote.Head(ref, d.t.Options(ctx)...)
		switch {
		case err == nil && head.Digest == m.Desc.Digest:
			tr.Unchanged = true
		case err != nil && !registry.IsNotFound(err):
			return fmt.Errorf("reading tag %s: %w", ref, err)
		default:
			if err := remote.Put(ref, registry.RawManifest{Data: m.Raw, Type: m.Desc.MediaType}, d.t.Options(ctx)...); err != nil {
				return fmt.Errorf("writing tag %s: %w", ref, err)
			}
		}
		j.res.Tags = append(j.res.Tags, tr)
	}
	return nil
}

// writeManifests puts the manifests of img the registry lacks. A
// referrer counts as there only when its subject's referrers list it
// (API or referrers tag), so an earlier run that stopped between the
// manifest and the referrers tag is completed.
func (d *dest) writeManifests(ctx context.Context, j *job) error {
	repo := j.repo
	listed := map[v1.Hash][]v1.Descriptor{}
	for _, m := range j.img.Manifests {
		ref := repo.Digest(m.Desc.Digest.String())
		if m.Subject != nil {
			refs, ok := listed[m.Subject.Digest]
			if !ok {
				r, err := d.t.Referrers(ctx, repo, m.Subject.Digest)
				if err != nil {
					return err
				}
				if r.API {
					d.api.Store(true)
				}
				refs = r.Manifests
				listed[m.Subject.Digest] = refs
			}
			if slices.ContainsFunc(refs, func(x v1.Descriptor) bool { return x.Digest == m.Desc.Digest }) {
				continue
			}
		} else {
			_, err := remote.Head(ref, d.t.Options(ctx)...)
			if err == nil {
				continue
			}
			if !registry.IsNotFound(err) {
				return fmt.Errorf("reading manifest %s: %w", ref, err)
			}
		}
		if err := remote.Put(ref, registry.RawManifest{Data: m.Raw, Type: m.Desc.MediaType}, d.t.Options(ctx)...); err != nil {
			return fmt.Errorf("writing manifest %s: %w", ref, err)
		}
		j.res.ManifestsWritten++
	}
	return nil
}

// destTags pairs the tags of img with their names at the destination:
// rename replaces the one selected tag when given.
func destTags(img *Image, rename []string) []tagDest {
	var out []tagDest
	for _, t := range img.Tags {
		if t.Attached || len(rename) == 0 {
			out = append(out, tagDest{src: t, name: t.Name})
			continue
		}
		for _, n := range rename {
			out = append(out, tagDest{src: t, name: n})
		}
	}
	return out
}
