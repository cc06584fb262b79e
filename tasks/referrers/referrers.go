// Package referrers keeps the OCI 1.1 referrers of every repository: for
// each subject digest, the manifests of that repository whose `subject`
// names it. distribution stores such manifests but cannot list them; this
// package can, for `serve` (the referrers API), gc and verify.
//
// A record is one small file per (repository, subject, referrer) written
// through distribution's storage driver, so it lives wherever the
// manifests live (filesystem, S3...). It is written before the manifest
// is stored and is only a hint: a listing keeps a record only while the
// repository holds the referrer's manifest and that manifest names the
// subject, and takes the descriptor (media type, size, artifact type,
// annotations) from the manifest itself. A crash at any point of a
// manifest PUT therefore never makes the list disagree with the stored
// manifests; a record left by a PUT that never completed is ignored, and
// gc removes it.
//
// The package never prints and never parses configuration.
package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Root is where the records live in the storage, beside distribution's
// /docker tree: <Root>/<repository>/_subjects/<alg>/<hex>/<alg>-<hex>. A
// repository path component never starts with "_", so "_subjects" cannot
// be part of a repository name.
const Root = "/ocireg/v1/referrers"

// cacheMax bounds the descriptors kept in memory (they are derived from
// content-addressed manifests, so they never go stale).
const cacheMax = 100_000

// MaxPageBytes bounds the JSON of one referrers page (the image index the
// API answers): a page ends before the descriptor that would take it over,
// and holds at least one. Clients of the API read pages up to this size.
const MaxPageBytes = 4 << 20

// Info is what a manifest says about itself as a referrer.
type Info struct {
	// Subject is the digest its subject names ("" without subject).
	Subject digest.Digest
	// Descriptor is the manifest's entry in a referrers list: media type,
	// digest, size, artifact type (its own, else its config's media type)
	// and annotations.
	Descriptor v1.Descriptor
}

// manifestFields are the fields of an image manifest or index a referrers
// list needs.
type manifestFields struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *v1.Descriptor    `json:"config"`
	Subject      *v1.Descriptor    `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// Parse reads the referrer fields of a manifest payload of media type mt
// whose digest is dgst.
func Parse(mt string, payload []byte, dgst digest.Digest) (Info, error) {
	var m manifestFields
	if err := json.Unmarshal(payload, &m); err != nil {
		return Info{}, fmt.Errorf("manifest %s: %w", dgst, err)
	}
	if mt == "" {
		mt = m.MediaType
	}
	info := Info{Descriptor: v1.Descriptor{
		MediaType:    mt,
		Digest:       dgst,
		Size:         int64(len(payload)),
		ArtifactType: m.ArtifactType,
		Annotations:  m.Annotations,
	}}
	if info.Descriptor.ArtifactType == "" && m.Config != nil {
		info.Descriptor.ArtifactType = m.Config.MediaType
	}
	if m.Subject != nil {
		if err := m.Subject.Digest.Validate(); err != nil {
			return Info{}, fmt.Errorf("manifest %s: subject: %w", dgst, err)
		}
		info.Subject = m.Subject.Digest
	}
	return info, nil
}

// Record is one record: repository Repo lists Referrer among the
// referrers of Subject.
type Record struct {
	Repo     string
	Subject  digest.Digest
	Referrer digest.Digest
	// Path is the record's storage path.
	Path string
}

// Store reads and writes the records in a storage driver.
type Store struct {
	d   driver.StorageDriver
	reg distribution.Namespace

	mu    sync.Mutex
	cache map[digest.Digest]Info
}

// New returns the store over d, the driver distribution's registry uses.
func New(ctx context.Context, d driver.StorageDriver) (*Store, error) {
	reg, err := storage.NewRegistry(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	return &Store{d: d, reg: reg, cache: map[digest.Digest]Info{}}, nil
}

// SubjectDir is the directory of the records of subject in repo.
func SubjectDir(repo string, subject digest.Digest) string {
	return path.Join(Root, repo, "_subjects", string(subject.Algorithm()), subject.Encoded())
}

// RecordPath is the path of the record of referrer in the list of subject.
func RecordPath(repo string, subject, referrer digest.Digest) string {
	return path.Join(SubjectDir(repo, subject), string(referrer.Algorithm())+"-"+referrer.Encoded())
}

// check refuses a repository name or digests a path must not be built of.
func check(repo string, dgsts ...digest.Digest) error {
	if _, err := reference.WithName(repo); err != nil {
		return fmt.Errorf("repository %q: %w", repo, err)
	}
	for _, d := range dgsts {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("digest %q: %w", d, err)
		}
	}
	return nil
}

// Add records referrer in the referrers of subject in repo. It is called
// before the manifest is stored (see the package comment).
func (s *Store) Add(ctx context.Context, repo string, subject, referrer digest.Digest) error {
	if err := check(repo, subject, referrer); err != nil {
		return err
	}
	if err := s.d.PutContent(ctx, RecordPath(repo, subject, referrer), []byte(referrer.String()+"\n")); err != nil {
		return fmt.Errorf("recording referrer %s of %s in %s: %w", referrer, subject, repo, err)
	}
	return nil
}

// Remove deletes the record of referrer in the list of subject; a record
// that is not there is no error.
func (s *Store) Remove(ctx context.Context, repo string, subject, referrer digest.Digest) error {
	if err := check(repo, subject, referrer); err != nil {
		return err
	}
	err := s.d.Delete(ctx, RecordPath(repo, subject, referrer))
	var nf driver.PathNotFoundError
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("removing referrer %s of %s in %s: %w", referrer, subject, repo, err)
	}
	return nil
}

// Ensure records referrer in the referrers of subject in repo unless its
// record is there: a PUT calls it after the manifest is stored, in case a
// DELETE through another replica removed the record meanwhile.
func (s *Store) Ensure(ctx context.Context, repo string, subject, referrer digest.Digest) error {
	if err := check(repo, subject, referrer); err != nil {
		return err
	}
	if _, err := s.d.Stat(ctx, RecordPath(repo, subject, referrer)); err == nil {
		return nil
	}
	return s.Add(ctx, repo, subject, referrer)
}

// Removed removes the record of referrer after its manifest was deleted,
// and records it again when repo holds the manifest again by then (a PUT
// through another replica stored it after the delete).
func (s *Store) Removed(ctx context.Context, repo string, subject, referrer digest.Digest) error {
	if err := s.Remove(ctx, repo, subject, referrer); err != nil {
		return err
	}
	info, held, err := s.Lookup(ctx, repo, referrer)
	if err != nil || !held || info.Subject != subject {
		return err
	}
	return s.Add(ctx, repo, subject, referrer)
}

// Lookup reads manifest dgst of repo: ok is false when the repository
// does not hold it.
func (s *Store) Lookup(ctx context.Context, repo string, dgst digest.Digest) (info Info, ok bool, err error) {
	named, err := reference.WithName(repo)
	if err != nil {
		return Info{}, false, fmt.Errorf("repository %q: %w", repo, err)
	}
	r, err := s.reg.Repository(ctx, named)
	if err != nil {
		return Info{}, false, err
	}
	ms, err := r.Manifests(ctx)
	if err != nil {
		return Info{}, false, err
	}
	if exists, err := ms.Exists(ctx, dgst); err != nil || !exists {
		return Info{}, false, err
	}
	s.mu.Lock()
	info, ok = s.cache[dgst]
	s.mu.Unlock()
	if ok {
		return info, true, nil
	}
	m, err := ms.Get(ctx, dgst)
	if err != nil {
		var unknown distribution.ErrManifestUnknownRevision
		if errors.As(err, &unknown) {
			return Info{}, false, nil
		}
		return Info{}, false, err
	}
	mt, payload, err := m.Payload()
	if err != nil {
		return Info{}, false, err
	}
	if info, err = Parse(mt, payload, dgst); err != nil {
		return Info{}, false, err
	}
	s.mu.Lock()
	if len(s.cache) >= cacheMax {
		s.cache = map[digest.Digest]Info{}
	}
	s.cache[dgst] = info
	s.mu.Unlock()
	return info, true, nil
}

// Query selects a page of referrers.
type Query struct {
	// ArtifactType keeps only descriptors of that artifact type ("" all).
	ArtifactType string
	// Last is the digest the previous page ended with ("" from the start).
	Last digest.Digest
	// N is the most descriptors a page holds.
	N int
}

// List returns the referrers of subject in repo in digest order, one page
// of q: each one a manifest the repository holds whose subject is subject.
// A page holds at most q.N descriptors and, encoded by EncodePage, at most
// MaxPageBytes (at least one descriptor, whatever its size). more is true
// when another page follows.
func (s *Store) List(ctx context.Context, repo string, subject digest.Digest, q Query) (page []v1.Descriptor, more bool, err error) {
	if err := check(repo, subject); err != nil {
		return nil, false, err
	}
	names, err := s.d.List(ctx, SubjectDir(repo, subject))
	var nf driver.PathNotFoundError
	if errors.As(err, &nf) {
		return []v1.Descriptor{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, err)
	}
	var todo []digest.Digest
	for _, d := range recordDigests(names) {
		if q.Last == "" || d > q.Last {
			todo = append(todo, d)
		}
	}
	page = []v1.Descriptor{}
	size := pageOverhead
	for len(todo) > 0 {
		batch := todo[:min(len(todo), lookupBatch)]
		todo = todo[len(batch):]
		infos, err := s.lookupAll(ctx, repo, batch)
		if err != nil {
			return nil, false, err
		}
		for _, info := range infos {
			if info == nil || info.Subject != subject {
				continue
			}
			if q.ArtifactType != "" && info.Descriptor.ArtifactType != q.ArtifactType {
				continue
			}
			n := descriptorBytes(info.Descriptor) + 1 // and a comma
			if len(page) == q.N || (len(page) > 0 && size+n > MaxPageBytes) {
				return page, true, nil
			}
			page = append(page, info.Descriptor)
			size += n
		}
	}
	return page, false, nil
}

// EncodePage is the JSON of a referrers page: an OCI image index of page,
// HTML characters left as they are (they would take six bytes each).
func EncodePage(page []v1.Descriptor) ([]byte, error) {
	return encode(v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: page})
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// pageOverhead is the JSON of an empty page.
var pageOverhead = func() int {
	b, _ := EncodePage([]v1.Descriptor{})
	return len(b)
}()

// descriptorBytes is the JSON of d in a page.
func descriptorBytes(d v1.Descriptor) int {
	b, err := encode(d)
	if err != nil {
		return MaxPageBytes // cannot happen: a page refuses it
	}
	return len(b)
}

// lookupBatch and lookupParallel bound how many records a listing checks
// at a time, and how many of those at once (a stat is a round trip on
// object storage).
const (
	lookupBatch    = 256
	lookupParallel = 8
)

// lookupAll looks dgsts up in repo concurrently: the result holds the
// Info of each, in order, nil for a manifest the repository does not hold.
func (s *Store) lookupAll(ctx context.Context, repo string, dgsts []digest.Digest) ([]*Info, error) {
	out := make([]*Info, len(dgsts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lookupParallel)
	for i, d := range dgsts {
		g.Go(func() error {
			info, ok, err := s.Lookup(gctx, repo, d)
			if ok {
				out[i] = &info
			}
			return err
		})
	}
	return out, g.Wait()
}

// recordDigests turns the record paths of one subject directory into the
// referrer digests they name, sorted; anything else is skipped.
func recordDigests(names []string) []digest.Digest {
	var out []digest.Digest
	for _, n := range names {
		if d, ok := recordDigest(path.Base(n)); ok {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// recordDigest reads a record file name, <alg>-<hex>.
func recordDigest(name string) (digest.Digest, bool) {
	alg, hex, ok := strings.Cut(name, "-")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, d.Validate() == nil
}

// Walk calls fn with every record in the storage, in path order.
func (s *Store) Walk(ctx context.Context, fn func(Record) error) error {
	var recs []Record
	err := s.d.Walk(ctx, Root, func(fi driver.FileInfo) error {
		if fi.IsDir() {
			return nil
		}
		if rec, ok := parseRecordPath(fi.Path()); ok {
			recs = append(recs, rec)
		}
		return nil
	})
	var nf driver.PathNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing referrer records: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// parseRecordPath reads <Root>/<repo>/_subjects/<alg>/<hex>/<alg>-<hex>.
func parseRecordPath(p string) (Record, bool) {
	rest, ok := strings.CutPrefix(p, Root+"/")
	if !ok {
		return Record{}, false
	}
	repo, tail, ok := strings.Cut(rest, "/_subjects/")
	if !ok {
		return Record{}, false
	}
	parts := strings.Split(tail, "/")
	if len(parts) != 3 {
		return Record{}, false
	}
	subject := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[1])
	referrer, ok := recordDigest(parts[2])
	if !ok || check(repo, subject) != nil {
		return Record{}, false
	}
	return Record{Repo: repo, Subject: subject, Referrer: referrer, Path: p}, true
}

// All lists every referrer of subject in repo, page after page.
func (s *Store) All(ctx context.Context, repo string, subject digest.Digest) ([]v1.Descriptor, error) {
	var out []v1.Descriptor
	q := Query{N: 10000}
	for {
		page, more, err := s.List(ctx, repo, subject, q)
		out = append(out, page...)
		if err != nil || !more {
			return out, err
		}
		q.Last = page[len(page)-1].Digest
	}
}
