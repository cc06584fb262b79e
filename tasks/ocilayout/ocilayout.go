// Package ocilayout reads OCI image layouts, kept as a directory or as a
// tar archive read in place, without trusting them:
//
//   - index.json is read once (at most MaxDocumentSize bytes) and parsed
//     once; entries are found by digest, so reading every entry of an index
//     is linear in its size, and an index lists at most MaxIndexEntries;
//   - every document parsed in memory (an index, a manifest, a config) is
//     read up to the size its descriptor declares plus one byte, so a longer
//     file is refused without being read, and must hash to its digest;
//   - blobs are regular files inside the layout: never a symlink, nor below
//     a symlinked blobs directory, nor a sparse archive entry;
//   - every read stops as soon as the context given to Open ends.
//
// It never writes anything: an archive is not extracted.
package ocilayout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Limits on what a layout may declare.
const (
	// MaxDocumentSize bounds index.json, index and manifest blobs: the
	// registry refuses larger manifests anyway (distribution's limit).
	MaxDocumentSize = 4 << 20
	// MaxConfigSize bounds an image config.
	MaxConfigSize = 8 << 20
	// MaxIndexEntries bounds the entries of one index.
	MaxIndexEntries = 4096
)

// Layout is an OCI image layout opened for reading. Its images and indexes
// implement go-containerregistry's v1.Image and v1.ImageIndex, read lazily
// through the layout; they stop reading when the context given to Open
// ends (those interfaces take no context, so the layout keeps it).
type Layout struct {
	// Path is the layout directory or archive file as given.
	Path string

	ctx   context.Context
	store store
	root  *index

	mu      sync.Mutex
	images  map[v1.Hash]*image
	indexes map[v1.Hash]*index
}

// store is where a layout's files are: a directory or a tar archive.
type store interface {
	// open opens the regular file at name (slash-separated, relative to
	// the layout) and returns it with its size. It refuses symlinks.
	open(name string) (io.ReadCloser, int64, error)
	// path names the file at name for messages.
	path(name string) string
	close() error
}

// Open reads the layout directory dir. Reads through the layout stop when
// ctx ends.
func Open(ctx context.Context, dir string) (*Layout, error) {
	s, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	return open(ctx, dir, s)
}

// OpenArchive reads the layout kept in the tar archive file, in place.
// Close releases the file. Errors about the archive as a whole (gzip, a
// sparse or truncated entry) leave naming the file to the caller.
func OpenArchive(ctx context.Context, file string) (*Layout, error) {
	s, err := openTar(ctx, file)
	if err != nil {
		return nil, err
	}
	l, err := open(ctx, file, s)
	if err != nil {
		s.close()
		return nil, err
	}
	return l, nil
}

func open(ctx context.Context, where string, s store) (*Layout, error) {
	l := &Layout{Path: where, ctx: ctx, store: s, images: map[v1.Hash]*image{}, indexes: map[v1.Hash]*index{}}
	raw, err := l.readFile("index.json", -1, MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	root, err := l.parseIndex(raw, "index.json", v1.Descriptor{MediaType: types.OCIImageIndex})
	if err != nil {
		return nil, err
	}
	l.root = root
	return l, nil
}

// Close releases the files the layout holds open.
func (l *Layout) Close() error { return l.store.close() }

// Index is the layout's index.json.
func (l *Layout) Index() v1.ImageIndex { return l.root }

// Manifests are the entries of index.json. The slice is shared: do not
// modify it.
func (l *Layout) Manifests() []v1.Descriptor { return l.root.im.Manifests }

// Image is the image manifest of index.json entry d.
func (l *Layout) Image(d v1.Descriptor) (v1.Image, error) { return l.image(d) }

// ImageIndex is the image index of index.json entry d.
func (l *Layout) ImageIndex(d v1.Descriptor) (v1.ImageIndex, error) { return l.index(d) }

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// readFile reads the file at name, which must be size bytes (size < 0:
// any size up to max), and at most max bytes.
func (l *Layout) readFile(name string, size, max int64) ([]byte, error) {
	if err := l.ctx.Err(); err != nil {
		return nil, err
	}
	f, n, err := l.store.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := max
	if size >= 0 {
		limit = size
	}
	if n > limit {
		if size >= 0 {
			return nil, fmt.Errorf("%s is %d bytes, more than the %d declared", l.store.path(name), n, size)
		}
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", l.store.path(name), n, max)
	}
	// The size was checked; reading one byte more still catches a file
	// that grew in between.
	data, err := io.ReadAll(io.LimitReader(ctxReader{l.ctx, f}, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", l.store.path(name), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", l.store.path(name), limit)
	}
	if size >= 0 && int64(len(data)) != size {
		return nil, fmt.Errorf("%s is %d bytes, %d declared", l.store.path(name), len(data), size)
	}
	return data, nil
}

// readDoc reads the blob of d, a document parsed in memory (what names it
// in messages, e.g. "manifest"), at most max bytes, and checks its digest.
func (l *Layout) readDoc(what string, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size < 0 || d.Size > max {
		return nil, fmt.Errorf("%s %s declares %d bytes; at most %d are allowed", what, d.Digest, d.Size, max)
	}
	data, err := l.readFile(blobName(d.Digest), d.Size, max)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, d.Digest, err)
	}
	got, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if d.Digest.Algorithm == "sha256" && got != d.Digest {
		return nil, fmt.Errorf("%s %s: %s hashes to %s", what, d.Digest, l.store.path(blobName(d.Digest)), got)
	}
	return data, nil
}

// CheckBlob makes sure the layout holds blob h as a regular file of size
// bytes, so that a truncated, replaced or missing blob is named as such
// instead of failing in mid-upload. (A blob of the right size but the
// wrong content is refused by the registry's digest check.)
func (l *Layout) CheckBlob(h v1.Hash, size int64) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	f, n, err := l.store.open(blobName(h))
	if err != nil {
		return l.corrupt(h, err)
	}
	f.Close()
	if n != size {
		return fmt.Errorf("corrupt layout %s: blob %s is %d bytes, its manifest says %d", l.Path, h, n, size)
	}
	return nil
}

// Document reads the blob of d, a manifest or an index, at most
// MaxDocumentSize bytes, checked against its digest.
func (l *Layout) Document(d v1.Descriptor) ([]byte, error) {
	return l.readDoc("manifest", d, MaxDocumentSize)
}

// HasBlob reports whether the layout holds blob h as a regular file.
func (l *Layout) HasBlob(h v1.Hash) bool {
	f, _, err := l.store.open(blobName(h))
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Blob opens blob d after checking it is a regular file of d.Size bytes
// (the reader does not check the digest: the caller hashes what it reads).
func (l *Layout) Blob(d v1.Descriptor) (io.ReadCloser, error) {
	return (&blob{l: l, desc: d}).Compressed()
}

// corrupt names what is wrong with blob h, which could not be opened.
func (l *Layout) corrupt(h v1.Hash, err error) error {
	var ue *unsafeError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("corrupt layout %s: blob %s is missing", l.Path, h)
	case errors.As(err, &ue) && ue.name == blobName(h):
		return fmt.Errorf("corrupt layout %s: blob %s %s", l.Path, h, ue.why)
	case errors.As(err, &ue):
		return fmt.Errorf("corrupt layout %s: %v (reading blob %s)", l.Path, ue, h)
	}
	return fmt.Errorf("corrupt layout %s: %w", l.Path, err)
}

// CheckImage runs CheckBlob on the config and layers of img, an image of
// the layout.
func (l *Layout) CheckImage(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("corrupt layout %s: %w", l.Path, err)
	}
	if err := l.CheckBlob(m.Config.Digest, m.Config.Size); err != nil {
		return err
	}
	for _, d := range m.Layers {
		if len(d.URLs) > 0 {
			continue // non-distributable: not in the layout
		}
		if err := l.CheckBlob(d.Digest, d.Size); err != nil {
			return err
		}
	}
	return nil
}

// CheckIndex runs CheckImage on every image idx (an index of the layout)
// reaches, through nested indexes.
func (l *Layout) CheckIndex(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("corrupt layout %s: %w", l.Path, err)
	}
	for _, d := range im.Manifests {
		if err := l.CheckBlob(d.Digest, d.Size); err != nil {
			return err
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			if err := l.CheckIndex(child); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return err
			}
			if err := l.CheckImage(img); err != nil {
				return err
			}
		}
	}
	return nil
}

// index is an image index of the layout: index.json or a nested index.
type index struct {
	l        *Layout
	name     string // "index.json" or "index sha256:..."
	desc     v1.Descriptor
	raw      []byte
	im       *v1.IndexManifest
	byDigest map[v1.Hash]int
}

var _ v1.ImageIndex = (*index)(nil)

// parseIndex parses raw, the index called name, once.
func (l *Layout) parseIndex(raw []byte, name string, desc v1.Descriptor) (*index, error) {
	where := name
	if name == "index.json" {
		where = l.store.path(name)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(im.Manifests) > MaxIndexEntries {
		return nil, fmt.Errorf("%s lists %d entries; at most %d are supported", where, len(im.Manifests), MaxIndexEntries)
	}
	idx := &index{l: l, name: name, desc: desc, raw: raw, im: &im, byDigest: make(map[v1.Hash]int, len(im.Manifests))}
	for i, d := range im.Manifests {
		if i%256 == 0 {
			if err := l.ctx.Err(); err != nil {
				return nil, err
			}
		}
		if d.Size < 0 || ((d.MediaType.IsImage() || d.MediaType.IsIndex()) && d.Size > MaxDocumentSize) {
			return nil, fmt.Errorf("%s: entry %d (%s) declares %d bytes; a manifest is at most %d", where, i, d.Digest, d.Size, MaxDocumentSize)
		}
		if _, dup := idx.byDigest[d.Digest]; !dup {
			idx.byDigest[d.Digest] = i
		}
	}
	if desc.Digest == (v1.Hash{}) {
		h, _, err := v1.SHA256(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		idx.desc.Digest, idx.desc.Size = h, int64(len(raw))
	}
	return idx, nil
}

func (i *index) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *index) Digest() (v1.Hash, error)            { return i.desc.Digest, nil }
func (i *index) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *index) RawManifest() ([]byte, error)        { return i.raw, nil }

// IndexManifest returns the parsed index; its Manifests slice is shared.
func (i *index) IndexManifest() (*v1.IndexManifest, error) {
	im := *i.im
	return &im, nil
}

func (i *index) find(h v1.Hash) (v1.Descriptor, error) {
	n, ok := i.byDigest[h]
	if !ok {
		return v1.Descriptor{}, fmt.Errorf("%s has no entry %s", i.name, h)
	}
	return i.im.Manifests[n], nil
}

func (i *index) Image(h v1.Hash) (v1.Image, error) {
	d, err := i.find(h)
	if err != nil {
		return nil, err
	}
	return i.l.image(d)
}

func (i *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := i.find(h)
	if err != nil {
		return nil, err
	}
	return i.l.index(d)
}

// index reads the nested index of entry d once.
func (l *Layout) index(d v1.Descriptor) (*index, error) {
	if !d.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is not an image index (%s)", d.Digest, d.MediaType)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if idx, ok := l.indexes[d.Digest]; ok {
		return idx, nil
	}
	raw, err := l.readDoc("index", d, MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	idx, err := l.parseIndex(raw, "index "+d.Digest.String(), d)
	if err != nil {
		return nil, err
	}
	l.indexes[d.Digest] = idx
	return idx, nil
}

// image is an image manifest of the layout.
type image struct {
	l      *Layout
	desc   v1.Descriptor
	raw    []byte
	m      *v1.Manifest
	blobs  map[v1.Hash]v1.Descriptor // config and layers
	config struct {
		once sync.Once
		data []byte
		err  error
	}
}

// image reads the manifest of entry d once.
func (l *Layout) image(d v1.Descriptor) (v1.Image, error) {
	if !d.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is not an image manifest (%s)", d.Digest, d.MediaType)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if img, ok := l.images[d.Digest]; ok {
		return partial.CompressedToImage(img)
	}
	raw, err := l.readDoc("manifest", d, MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	img := &image{l: l, desc: d, raw: raw, m: &m, blobs: make(map[v1.Hash]v1.Descriptor, len(m.Layers)+1)}
	if m.Config.Size < 0 || m.Config.Size > MaxConfigSize {
		return nil, fmt.Errorf("manifest %s: config %s declares %d bytes; at most %d are allowed", d.Digest, m.Config.Digest, m.Config.Size, MaxConfigSize)
	}
	img.blobs[m.Config.Digest] = m.Config
	for _, ld := range m.Layers {
		if ld.Size < 0 {
			return nil, fmt.Errorf("manifest %s: layer %s declares %d bytes", d.Digest, ld.Digest, ld.Size)
		}
		img.blobs[ld.Digest] = ld
	}
	l.images[d.Digest] = img
	return partial.CompressedToImage(img)
}

func (i *image) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *image) RawManifest() ([]byte, error)        { return i.raw, nil }

// Descriptor is the index entry of the image (with its platform).
func (i *image) Descriptor() (*v1.Descriptor, error) {
	d := i.desc
	return &d, nil
}

// RawConfigFile reads the config once, at most the size the manifest
// declares, and checks its digest.
func (i *image) RawConfigFile() ([]byte, error) {
	c := &i.config
	c.once.Do(func() {
		c.data, c.err = i.l.readDoc("config", i.m.Config, MaxConfigSize)
		if c.err != nil {
			c.err = fmt.Errorf("image %s: %w", i.desc.Digest, c.err)
		}
	})
	return c.data, c.err
}

func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := i.blobs[h]
	if !ok {
		return nil, fmt.Errorf("manifest %s has no blob %s", i.desc.Digest, h)
	}
	return &blob{l: i.l, desc: d}, nil
}

// blob is a layer (or the config) of an image, streamed from the layout.
type blob struct {
	l    *Layout
	desc v1.Descriptor
}

func (b *blob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *blob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

// Compressed opens the blob after checking it is a regular file of the
// declared size; reading stops when the layout's context ends.
func (b *blob) Compressed() (io.ReadCloser, error) {
	if err := b.l.ctx.Err(); err != nil {
		return nil, err
	}
	f, n, err := b.l.store.open(blobName(b.desc.Digest))
	if err != nil {
		return nil, b.l.corrupt(b.desc.Digest, err)
	}
	if n != b.desc.Size {
		f.Close()
		return nil, fmt.Errorf("corrupt layout %s: blob %s is %d bytes, its manifest says %d", b.l.Path, b.desc.Digest, n, b.desc.Size)
	}
	return ctxReader{b.l.ctx, f}, nil
}

// ctxReader stops reading when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.ReadCloser
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r ctxReader) Close() error { return r.r.Close() }
