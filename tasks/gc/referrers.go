package gc

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
)

// Referrers in garbage collection. distribution's mark and sweep does not
// know `subject`: with --delete-untagged it would remove every referrer
// (they are untagged by nature). A referrer stays exactly while its
// subject stays: whatever a tag reaches through index entries and
// subjects, in any order, is live. Referrers of a subject that is gone
// are untagged and go. Records whose manifest is gone or going are swept.

// live is every manifest a tag, or a push in flight (inUse), reaches
// through index entries and subjects (a referrer of a live manifest is
// live, so is its signature).
func (rm *repoManifests) live(inUse map[digest.Digest]bool) map[digest.Digest]bool {
	referrersOf := map[digest.Digest][]digest.Digest{}
	for d, m := range rm.all {
		if m.subject != "" {
			referrersOf[m.subject] = append(referrersOf[m.subject], d)
		}
	}
	// A signature tag's manifest lives with the manifest it signs, as a
	// referrer does with its subject.
	for _, st := range rm.sigs {
		referrersOf[st.signed] = append(referrersOf[st.signed], st.manifest)
	}
	live := map[digest.Digest]bool{}
	todo := append([]digest.Digest(nil), rm.tagged...)
	for d := range inUse {
		// A push names a manifest it probed or put by digest in an index
		// it puts later; nothing names a referrer that way (it lives with
		// its subject).
		if m, ok := rm.all[d]; ok && m.subject == "" {
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
