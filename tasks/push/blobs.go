package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// blob is one blob of a manifest and whether the registry has it.
type blob struct {
	l      v1.Layer
	d      v1.Hash
	size   int64
	exists bool
}

// blobState is where a blob went in this run: the repository that has
// it (or is getting it), and, once done is closed, whether it got there.
// A later image that lacks the blob mounts it from there: one request,
// no bytes.
type blobState struct {
	repo string
	done chan struct{}
	ok   bool
}

// pushManifest uploads the blobs of m the registry lacks, then puts the
// manifest by digest, and returns its index entry. A manifest the
// registry already holds in repo is all there: the registry checked its
// blobs when it was put, and gc keeps what a manifest references. So a
// re-push costs one HEAD per manifest.
func (p *pushRun) pushManifest(ctx context.Context, repo name.Repository, m deploy.Manifest, im *image, ev events.Sink) (v1.Descriptor, error) {
	all, err := manifestBlobs(m.Image)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var allBytes int64
	for _, b := range all {
		allBytes += b.size
	}
	have, err := p.hasManifest(ctx, repo, m.Digest)
	if err != nil {
		return v1.Descriptor{}, p.storageDown(err)
	}
	if have {
		p.done.Add(allBytes)
		im.add(func(im *image) { im.skipped += allBytes })
		ev.Emit(BlobsDone{Present: len(all), PresentBytes: allBytes})
		return p.putManifest(ctx, repo, m, true, im)
	}
	for _, b := range all {
		if err := m.Layout.CheckBlob(b.d, b.size); err != nil {
			return v1.Descriptor{}, err
		}
	}
	var sent atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range all {
		g.Go(func() error { return p.ensureBlob(gctx, repo, b, &sent) })
	}
	err = g.Wait()
	uploaded := 0
	var presentBytes int64
	for _, b := range all {
		if b.exists {
			presentBytes += b.size
		} else {
			uploaded++
		}
	}
	im.add(func(im *image) { im.uploaded += sent.Load(); im.skipped += presentBytes })
	if err != nil {
		return v1.Descriptor{}, p.storageDown(err)
	}
	ev.Emit(BlobsDone{Uploaded: uploaded, Sent: sent.Load(), Present: len(all) - uploaded, PresentBytes: presentBytes})
	return p.putManifest(ctx, repo, m, false, im)
}

// storageDown adds to a server error of a registry on a shared backend
// that the backend is the likely cause (distribution answers 500 when its
// storage fails).
func (p *pushRun) storageDown(err error) error {
	var te *transport.Error
	if !p.c.Backend.S3() || !errors.As(err, &te) || te.StatusCode != http.StatusInternalServerError {
		return err
	}
	return fmt.Errorf("%w (the registry could not read its storage %s; is the S3 endpoint up? The registry log says more)", err, p.c.Backend)
}

// manifestBlobs lists the config and layers of img, each digest once.
func manifestBlobs(img v1.Image) ([]*blob, error) {
	cl, err := partial.ConfigLayer(img)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	var all []*blob
	seen := map[v1.Hash]bool{}
	for _, l := range append([]v1.Layer{cl}, layers...) {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		all = append(all, &blob{l: l, d: d, size: size})
	}
	return all, nil
}

// slot takes one of the run's blob request slots; the returned function
// gives it back.
func (p *pushRun) slot(ctx context.Context) (func(), error) {
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// ensureBlob gets blob b into repo, which may have it already: by a POST
// that mounts it from the repository of this run that has it (waiting
// for its upload when one is under way), else from repo itself (the
// registry answers 201 when repo has it: the check and the upload session
// in one request), and, when it is missing, one monolithic PUT. b.exists
// is set when nothing had to be sent; sent counts the bytes of upload
// bodies.
func (p *pushRun) ensureBlob(ctx context.Context, repo name.Repository, b *blob, sent *atomic.Int64) error {
	p.mu.Lock()
	st, known := p.blobs[b.d]
	if !known {
		st = &blobState{repo: repo.RepositoryStr(), done: make(chan struct{})}
		p.blobs[b.d] = st
	}
	p.mu.Unlock()
	if !known {
		err := p.uploadBlob(ctx, repo, b, repo.RepositoryStr(), sent)
		st.ok = err == nil
		close(st.done)
		return err
	}
	select {
	case <-st.done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	from := repo.RepositoryStr()
	if st.ok {
		if st.repo == from {
			b.exists = true // another manifest of this image put it
			p.done.Add(b.size)
			return nil
		}
		from = st.repo
	}
	return p.uploadBlob(ctx, repo, b, from, sent)
}

// uploadBlob puts b into repo in the fewest requests the registry allows:
// a POST asking to mount it from the repository from (repo itself: the
// registry then only checks that repo has it), which is all when the
// registry mounts it, else one monolithic PUT of the whole blob with its
// digest into the session the POST opened. It holds one slot of the
// budget throughout; a transient failure starts it over (registry.Retry).
func (p *pushRun) uploadBlob(ctx context.Context, repo name.Repository, b *blob, from string, sent *atomic.Int64) error {
	release, err := p.slot(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = registry.Retry(ctx, func() error {
		loc, mounted, err := p.startUpload(ctx, repo, b.d, from)
		if err != nil || mounted {
			b.exists = mounted
			return err
		}
		return p.putBlob(ctx, repo, loc, b, sent)
	})
	if err != nil {
		return fmt.Errorf("uploading blob %s: %w%s", b.d, err, p.storageFull(b.size))
	}
	if b.exists {
		p.done.Add(b.size)
	}
	return nil
}

// startUpload opens b's upload session of repo, asking to mount it from
// from (registry.StartUpload).
func (p *pushRun) startUpload(ctx context.Context, repo name.Repository, d v1.Hash, from string) (loc string, mounted bool, err error) {
	client, err := p.client(ctx, repo)
	if err != nil {
		return "", false, err
	}
	return registry.StartUpload(ctx, client, repo, d, from)
}

// putBlob completes the upload session at loc with b's whole content and
// its digest (a monolithic PUT), counting the bytes sent.
func (p *pushRun) putBlob(ctx context.Context, repo name.Repository, loc string, b *blob, sent *atomic.Int64) error {
	client, err := p.client(ctx, repo)
	if err != nil {
		return err
	}
	rc, err := b.l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return registry.FinishUpload(ctx, client, loc, b.d, b.size, &countingBody{r: rc, n: sent, total: &p.sent, done: &p.done})
}

// hasManifest asks whether repo holds manifest d.
func (p *pushRun) hasManifest(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	_, err := p.puller.Head(ctx, repo.Digest(d.String()))
	switch {
	case err == nil:
		return true, nil
	case registry.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("checking manifest: %w", err)
}

// putManifest puts m's manifest by digest (no tag points at it yet)
// unless have says the registry has it, and returns its index entry.
func (p *pushRun) putManifest(ctx context.Context, repo name.Repository, m deploy.Manifest, have bool, im *image) (v1.Descriptor, error) {
	raw, err := m.Image.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := m.Image.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if !have {
		if err := p.pusher.Put(ctx, repo.Digest(m.Digest.String()), registry.RawManifest{Data: raw, Type: mt}); err != nil {
			return v1.Descriptor{}, fmt.Errorf("putting manifest: %w", err)
		}
	}
	im.add(func(im *image) { im.manifests++ })
	plat := m.Platform
	return v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: m.Digest, Platform: &plat}, nil
}

// countingBody counts the bytes read from an upload body: into the
// manifest's count (n) and the run's (total, and done for the bar).
type countingBody struct {
	r           io.ReadCloser
	n           *atomic.Int64
	total, done *atomic.Int64
}

func (b *countingBody) Read(buf []byte) (int, error) {
	n, err := b.r.Read(buf)
	for _, c := range []*atomic.Int64{b.n, b.total, b.done} {
		if c != nil {
			c.Add(int64(n))
		}
	}
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }
