package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

// Referrers in garbage collection. distribution's mark and sweep does not
// know `subject`: with --delete-untagged it would remove every referrer
// (they are untagged by nature). A referrer stays exactly while its
// subject stays: whatever a tag reaches through index entries and
// subjects, in any order, is live. Referrers of a subject that is gone
// are untagged and go. Records whose manifest is gone or going are swept.

// gcManifest is what gc needs of one stored manifest.
type gcManifest struct {
	subject  digest.Digest
	children []digest.Digest // entries of an index
}

// repoManifests are the manifests of one repository and its tagged ones.
type repoManifests struct {
	all    map[digest.Digest]gcManifest
	tagged []digest.Digest
}

// scanManifests reads every manifest of every repository.
func scanManifests(ctx context.Context, reg distribution.Namespace) (map[string]*repoManifests, error) {
	out := map[string]*repoManifests{}
	err := reg.(distribution.RepositoryEnumerator).Enumerate(ctx, func(name string) error {
		rm, err := scanRepository(ctx, reg, name)
		if err != nil {
			return fmt.Errorf("reading the manifests of %s: %w", name, err)
		}
		out[name] = rm
		return nil
	})
	if err != nil && !regstore.IsNotFound(err) {
		return nil, err
	}
	return out, nil
}

// scanRepository reads the manifests and tags of repository name.
func scanRepository(ctx context.Context, reg distribution.Namespace, name string) (*repoManifests, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, err
	}
	repo, err := reg.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	rm := &repoManifests{all: map[digest.Digest]gcManifest{}}
	err = ms.(distribution.ManifestEnumerator).Enumerate(ctx, func(dgst digest.Digest) error {
		m, err := ms.Get(ctx, dgst)
		if err != nil {
			return nil // a manifest that does not read keeps nothing alive; verify reports it
		}
		mt, payload, err := m.Payload()
		if err != nil {
			return nil
		}
		info, err := referrers.Parse(mt, payload, dgst)
		if err != nil {
			return nil
		}
		gm := gcManifest{subject: info.Subject}
		if mt == v1.MediaTypeImageIndex || strings.Contains(mt, "manifest.list") {
			for _, d := range m.References() {
				gm.children = append(gm.children, d.Digest)
			}
		}
		rm.all[dgst] = gm
		return nil
	})
	if err != nil && !regstore.IsNotFound(err) {
		return nil, err
	}
	tags, err := repo.Tags(ctx).All(ctx)
	if err != nil {
		return rm, nil // no tags
	}
	for _, tag := range tags {
		if desc, err := repo.Tags(ctx).Get(ctx, tag); err == nil {
			rm.tagged = append(rm.tagged, desc.Digest)
		}
	}
	return rm, nil
}

// live is every manifest a tag, or a push in flight (inUse), reaches
// through index entries and subjects (a referrer of a live manifest is
// live).
func (rm *repoManifests) live(inUse map[digest.Digest]bool) map[digest.Digest]bool {
	referrersOf := map[digest.Digest][]digest.Digest{}
	for d, m := range rm.all {
		if m.subject != "" {
			referrersOf[m.subject] = append(referrersOf[m.subject], d)
		}
	}
	live := map[digest.Digest]bool{}
	todo := append([]digest.Digest(nil), rm.tagged...)
	for d := range inUse {
		if _, ok := rm.all[d]; ok {
			todo = append(todo, d)
		}
	}
	for len(todo) > 0 {
		d := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if live[d] {
			continue
		}
		live[d] = true
		todo = append(todo, rm.all[d].children...)
		todo = append(todo, referrersOf[d]...)
	}
	return live
}

// gcNamespace is distribution's registry as MarkAndSweep sees it, except
// that a manifest kept alive only as a referrer looks tagged.
type gcNamespace struct {
	distribution.Namespace
	distribution.RepositoryEnumerator
	keep map[string]map[digest.Digest]bool
}

func newGCNamespace(reg distribution.Namespace, scan map[string]*repoManifests, inUse map[digest.Digest]bool) gcNamespace {
	keep := map[string]map[digest.Digest]bool{}
	for name, rm := range scan {
		keep[name] = rm.live(inUse)
	}
	return gcNamespace{Namespace: reg, RepositoryEnumerator: reg.(distribution.RepositoryEnumerator), keep: keep}
}

func (n gcNamespace) Repository(ctx context.Context, named reference.Named) (distribution.Repository, error) {
	r, err := n.Namespace.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	return gcRepository{Repository: r, keep: n.keep[named.Name()]}, nil
}

type gcRepository struct {
	distribution.Repository
	keep map[digest.Digest]bool
}

func (r gcRepository) Tags(ctx context.Context) distribution.TagService {
	return gcTags{TagService: r.Repository.Tags(ctx), keep: r.keep}
}

type gcTags struct {
	distribution.TagService
	keep map[digest.Digest]bool
}

// All lists the tags; a repository without any (one that holds only
// manifests pushed by digest, such as referrers of a subject pushed
// elsewhere or never) has none. distribution's mark phase skips every
// manifest of a repository whose tags it cannot list: it neither marks
// their blobs nor removes them, so the blobs went and the manifests and
// their records stayed for the next gc to find.
func (t gcTags) All(ctx context.Context) ([]string, error) {
	tags, err := t.TagService.All(ctx)
	var unknown distribution.ErrRepositoryUnknown
	if errors.As(err, &unknown) {
		return []string{}, nil
	}
	return tags, err
}

// Lookup names a pseudo tag for a live manifest no tag names.
func (t gcTags) Lookup(ctx context.Context, desc v1.Descriptor) ([]string, error) {
	tags, err := t.TagService.Lookup(ctx, desc)
	if err == nil && len(tags) == 0 && t.keep[desc.Digest] {
		return []string{"(live referrer)"}, nil
	}
	return tags, err
}

// sweepRecords removes the referrer records that list nothing: their
// manifest is not stored, does not name their subject, or is among the
// manifests this collection removes.
func (r *recordingDriver) sweepRecords(ctx context.Context, scan map[string]*repoManifests) error {
	store, err := referrers.New(ctx, r.StorageDriver)
	if err != nil {
		return err
	}
	removed := map[string]bool{}
	for _, m := range r.rep.Manifests {
		removed[m.Name] = true // repo@digest
	}
	return store.Walk(ctx, func(rec referrers.Record) error {
		rm := scan[rec.Repo]
		if rm != nil && !removed[rec.Repo+"@"+rec.Referrer.String()] {
			if m, ok := rm.all[rec.Referrer]; ok && m.subject == rec.Subject {
				return nil
			}
		}
		return r.Delete(ctx, rec.Path)
	})
}
