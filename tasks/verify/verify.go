// Package verify checks a registry's storage the way `git fsck` checks a
// repository: every tag resolves, every manifest and blob it references
// exists and hashes to its digest, signatures sign stored manifests with
// the registry's key (signatures.go), and blobs nothing references (what
// gc would free) are counted.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// Report is what Verify found.
type Report struct {
	Repositories int      `json:"repositories"`
	Tags         int      `json:"tags"`
	Manifests    int      `json:"manifests"`
	Blobs        int      `json:"blobs"`
	Bytes        int64    `json:"bytes"`
	Orphans      []Orphan `json:"orphans"`
	OrphanBytes  int64    `json:"orphanBytes"`
	// Referrers counts the referrer records, StaleReferrers those whose
	// manifest is not stored (gc removes them).
	Referrers      int `json:"referrers,omitempty"`
	StaleReferrers int `json:"staleReferrers,omitempty"`
	// Signatures counts the signature tags (sha256-<hex>.sig) and Signed
	// the manifests signed by the registry's key (pki/signing.pub).
	Signatures int      `json:"signatures,omitempty"`
	Signed     int      `json:"signed,omitempty"`
	Problems   []string `json:"problems"`
}

// Orphan is a stored blob no manifest references.
type Orphan struct {
	Digest string `json:"digest"`
	Bytes  int64  `json:"bytes"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Verify walks the storage configured for c. It reads only, so it is safe
// while the registry runs; content pushed during the walk may show up as
// orphans. It stops as soon as ctx ends, with an error.
func Verify(ctx context.Context, c *config.Config) (*Report, error) {
	_, d, err := regconfig.ReadStorage(c)
	if err != nil {
		return nil, err
	}
	reg, err := storage.NewRegistry(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	keys, err := sign.KnownKeys(c)
	if err != nil {
		return nil, fmt.Errorf("signing public key: %w", err)
	}
	v := &verifier{ctx: ctx, d: d, rep: &Report{}, blobs: map[digest.Digest]blobState{}, marked: map[digest.Digest]bool{}, signing: c.Sign, keys: keys}
	err = v.walk(reg)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("verify stopped before it finished: %w", context.Cause(ctx))
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(v.rep.Problems)
	return v.rep, nil
}

type blobState struct {
	size int64
	err  error
}

type verifier struct {
	ctx    context.Context
	d      driver.StorageDriver
	rep    *Report
	blobs  map[digest.Digest]blobState // hashed blobs
	marked map[digest.Digest]bool      // referenced by some manifest
	// subjects are repository -> manifest -> the subject it names.
	subjects map[string]map[digest.Digest]digest.Digest
	// signing says every tagged manifest must be signed; keys are the
	// registry's signing keys (none known: signatures are not checked).
	signing bool
	keys    sign.Keys
}

func (v *verifier) problem(format string, a ...any) {
	v.rep.Problems = append(v.rep.Problems, fmt.Sprintf(format, a...))
}

func (v *verifier) walk(reg distribution.Namespace) error {
	repos := reg.(distribution.RepositoryEnumerator)
	err := repos.Enumerate(v.ctx, func(name string) error {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		v.rep.Repositories++
		return v.repository(reg, name)
	})
	if err != nil && !regstore.IsNotFound(err) {
		return fmt.Errorf("listing repositories: %w", err)
	}
	err = reg.Blobs().Enumerate(v.ctx, func(dgst digest.Digest) error {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		if v.marked[dgst] {
			return nil
		}
		size := int64(0)
		if fi, err := v.d.Stat(v.ctx, blobData(dgst)); err == nil {
			size = fi.Size()
		}
		v.rep.Orphans = append(v.rep.Orphans, Orphan{Digest: dgst.String(), Bytes: size})
		v.rep.OrphanBytes += size
		return nil
	})
	if err != nil && !regstore.IsNotFound(err) {
		return fmt.Errorf("listing blobs: %w", err)
	}
	return v.checkReferrers()
}

func (v *verifier) repository(reg distribution.Namespace, name string) error {
	named, err := reference.WithName(name)
	if err != nil {
		v.problem("%s: invalid repository name: %v", name, err)
		return nil
	}
	repo, err := reg.Repository(v.ctx, named)
	if err != nil {
		return fmt.Errorf("opening repository %s: %w", name, err)
	}
	ms, err := repo.Manifests(v.ctx)
	if err != nil {
		return fmt.Errorf("opening manifests of %s: %w", name, err)
	}
	seen := map[digest.Digest]bool{}
	tags, err := repo.Tags(v.ctx).All(v.ctx)
	var unknown distribution.ErrRepositoryUnknown
	if err != nil && !errors.As(err, &unknown) && !regstore.IsNotFound(err) {
		v.problem("%s: listing tags: %v", name, err)
	}
	sort.Strings(tags)
	resolved := map[string]digest.Digest{}
	defer func() { v.signatures(repo, ms, name, resolved) }()
	for _, tag := range tags {
		if v.ctx.Err() != nil {
			return v.ctx.Err()
		}
		desc, err := repo.Tags(v.ctx).Get(v.ctx, tag)
		var nt distribution.ErrTagUnknown
		if errors.As(err, &nt) && v.noFiles(regstore.Tag(name, tag)) {
			// A deleted tag whose empty prefix an object store still
			// lists (SeaweedFS removes empty folders a moment later):
			// not a tag.
			continue
		}
		v.rep.Tags++
		if err != nil {
			v.problem("%s:%s: tag does not resolve: %v", name, tag, err)
			continue
		}
		resolved[tag] = desc.Digest
		v.manifest(repo, ms, name+":"+tag, desc.Digest, seen)
	}
	// Untagged manifests stay until gc --delete-untagged; what they
	// reference is not an orphan, and they must be intact too.
	if en, ok := ms.(distribution.ManifestEnumerator); ok {
		err := en.Enumerate(v.ctx, func(dgst digest.Digest) error {
			v.manifest(repo, ms, name+"@"+dgst.String(), dgst, seen)
			return v.ctx.Err()
		})
		if err != nil && !regstore.IsNotFound(err) {
			v.problem("%s: listing manifests: %v", name, err)
		}
	}
	return nil
}

// manifest checks one manifest and, recursively, what it references.
func (v *verifier) manifest(repo distribution.Repository, ms distribution.ManifestService, where string, dgst digest.Digest, seen map[digest.Digest]bool) {
	if seen[dgst] {
		return
	}
	seen[dgst] = true
	v.marked[dgst] = true
	v.rep.Manifests++
	if _, err := v.blob(dgst, -1); err != nil {
		v.problem("%s: manifest %s: %v", where, dgst, err)
		return
	}
	m, err := ms.Get(v.ctx, dgst)
	if err != nil {
		v.problem("%s: manifest %s unreadable: %v", where, dgst, err)
		return
	}
	if mt, payload, err := m.Payload(); err == nil {
		if info, err := referrers.Parse(mt, payload, dgst); err == nil && info.Subject != "" {
			v.noteSubject(repo.Named().Name(), dgst, info.Subject)
		}
	}
	for _, ref := range m.References() {
		if v.ctx.Err() != nil {
			return
		}
		if len(ref.URLs) > 0 {
			continue // non-distributable layer, stored elsewhere
		}
		if ok, _ := ms.Exists(v.ctx, ref.Digest); ok {
			v.manifest(repo, ms, where, ref.Digest, seen)
			continue
		}
		v.marked[ref.Digest] = true
		if _, err := repo.Blobs(v.ctx).Stat(v.ctx, ref.Digest); err != nil {
			v.problem("%s: %s referenced by %s is missing: %v", where, ref.Digest, dgst, err)
			continue
		}
		if _, err := v.blob(ref.Digest, ref.Size); err != nil {
			v.problem("%s: blob %s: %v", where, ref.Digest, err)
		}
	}
}

// blob hashes a stored blob once and checks its size when want >= 0.
func (v *verifier) blob(dgst digest.Digest, want int64) (int64, error) {
	st, ok := v.blobs[dgst]
	if !ok {
		st.size, st.err = v.hash(dgst)
		v.blobs[dgst] = st
		if st.err == nil {
			v.rep.Blobs++
			v.rep.Bytes += st.size
		}
	}
	if st.err == nil && want >= 0 && st.size != want {
		return st.size, fmt.Errorf("size %d, descriptor says %d", st.size, want)
	}
	return st.size, st.err
}

func (v *verifier) hash(dgst digest.Digest) (int64, error) {
	if err := dgst.Validate(); err != nil {
		return 0, err
	}
	r, err := v.d.Reader(v.ctx, blobData(dgst), 0)
	if err != nil {
		if regstore.IsNotFound(err) {
			return 0, fmt.Errorf("data missing from storage")
		}
		return 0, err
	}
	defer r.Close()
	h := dgst.Algorithm().Hash()
	// The storage driver's reader does not watch the context: a large
	// blob would hold the walk for as long as it takes to hash it.
	n, err := io.Copy(h, ctxReader{v.ctx, r})
	if err != nil {
		return n, fmt.Errorf("reading: %w", err)
	}
	if got := digest.NewDigest(dgst.Algorithm(), h); got != dgst {
		return n, fmt.Errorf("content hashes to %s", got)
	}
	return n, nil
}

// noFiles reports whether no file is stored at or below p.
func (v *verifier) noFiles(p string) bool {
	found := errors.New("found")
	err := v.d.Walk(v.ctx, p, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return found
		}
		return nil
	})
	return err == nil || regstore.IsNotFound(err)
}

// ctxReader stops reading when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// blobData is where distribution keeps the content of dgst.
func blobData(dgst digest.Digest) string {
	return regstore.BlobData(dgst.Algorithm().String(), dgst.Encoded())
}
