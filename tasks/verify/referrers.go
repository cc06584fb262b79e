package verify

import (
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
)

// Referrer records (package referrers) against the manifests: every
// stored manifest with a subject is recorded in the list of that subject,
// and every record names a manifest the repository holds with that
// subject. A record whose manifest is not stored is what a PUT that never
// completed (or a DELETE cut short) leaves: it lists nothing, and gc
// removes it, so it is counted, not a problem.

// noteSubject remembers that manifest dgst of repo names subject.
func (v *verifier) noteSubject(repo string, dgst, subject digest.Digest) {
	if v.subjects == nil {
		v.subjects = map[string]map[digest.Digest]digest.Digest{}
	}
	if v.subjects[repo] == nil {
		v.subjects[repo] = map[digest.Digest]digest.Digest{}
	}
	v.subjects[repo][dgst] = subject
}

// checkReferrers compares the records with the manifests the walk read.
func (v *verifier) checkReferrers() error {
	store, err := referrers.New(v.ctx, v.d)
	if err != nil {
		return err
	}
	recorded := map[string]bool{}
	err = store.Walk(v.ctx, func(rec referrers.Record) error {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		v.rep.Referrers++
		key := rec.Repo + "@" + rec.Referrer.String()
		recorded[key+" "+rec.Subject.String()] = true
		if _, held, err := store.Lookup(v.ctx, rec.Repo, rec.Referrer); err == nil && !held {
			v.rep.StaleReferrers++
			return nil
		}
		if got, ok := v.subjects[rec.Repo][rec.Referrer]; !ok || got != rec.Subject {
			v.problem("%s: recorded as a referrer of %s, but its subject is %q", key, rec.Subject, got)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for repo, m := range v.subjects {
		for dgst, subject := range m {
			key := repo + "@" + dgst.String()
			if !recorded[key+" "+subject.String()] {
				v.problem("%s: its subject is %s, but it is missing from the referrers of %s (pushing the manifest again records it)", key, subject, subject)
			}
		}
	}
	return nil
}
