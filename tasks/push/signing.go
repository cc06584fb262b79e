package push

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// Signing (Options.Signer): every platform manifest and every tag's index
// the push writes is signed, and each platform's SPDX SBOM attested, in
// the background of the uploads; the results are reported once the
// images are pushed.

// signJobs bounds the signatures a push makes at once, in the
// background of its uploads.
const signJobs = 4

// signJob is one manifest to sign (or, with doc, to attest the build
// document doc of) and what came of it.
type signJob struct {
	group string
	repo  name.Repository
	d     v1.Hash
	doc   *deploy.Document
	res   sign.Result
	err   error
}

// sign has manifest d of repo (image group) signed when the push signs,
// once per run, in the background (signJobs at a time) while the push
// goes on; waitSigning collects the results.
func (p *pushRun) sign(ctx context.Context, repo name.Repository, group string, d v1.Hash) {
	p.signOrAttest(ctx, &signJob{group: group, repo: repo, d: d})
}

// attest has the SPDX document doc attested for manifest d of repo as
// sign signs (sign.Attest: an in-toto statement cosign verify-attestation
// checks).
func (p *pushRun) attest(ctx context.Context, repo name.Repository, group string, d v1.Hash, doc deploy.Document) {
	p.signOrAttest(ctx, &signJob{group: group, repo: repo, d: d, doc: &doc})
}

func (p *pushRun) signOrAttest(ctx context.Context, job *signJob) {
	if p.o.Signer == nil {
		return
	}
	key := job.repo.RepositoryStr() + "@" + job.d.String()
	if job.doc != nil {
		key += " " + job.doc.Path
	}
	p.mu.Lock()
	if p.signed[key] {
		p.mu.Unlock()
		return
	}
	if p.signed == nil {
		p.signed = map[string]bool{}
		p.signSlots = make(chan struct{}, signJobs)
	}
	p.signed[key] = true
	p.signJobs = append(p.signJobs, job)
	p.signWG.Add(1)
	slots := p.signSlots
	p.mu.Unlock()
	slots <- struct{}{}
	go func() {
		defer func() { <-slots; p.signWG.Done() }()
		if job.doc == nil {
			job.res, job.err = p.o.Signer.Sign(ctx, job.repo, job.d, p.lock)
			return
		}
		data, err := deploy.ReadDocument(*job.doc)
		if err != nil {
			job.err = err
			return
		}
		job.res, job.err = p.o.Signer.Attest(ctx, job.repo, job.d, sign.PredicateSPDX, data, p.lock)
	}()
}

// waitSigning waits for the signatures of the run and reports them in the
// order they were asked for; an image whose signing failed fails the push.
func (p *pushRun) waitSigning() {
	p.signWG.Wait()
	for _, j := range p.signJobs {
		if j.err != nil {
			what := "signing"
			if j.doc != nil {
				what = "attesting " + filepath.Base(j.doc.Path) + " for"
			}
			p.o.Events.Emit(ImageFailed{Image: j.group, Err: fmt.Errorf("%s %s: %w", what, j.d, j.err)})
			if !slices.Contains(p.sum.Failed, j.group) {
				p.sum.Failed = append(p.sum.Failed, j.group)
			}
			continue
		}
		p.sum.SigningKey = p.o.Signer.Key.Fingerprint
		switch {
		case j.doc != nil && j.res.Already:
			p.sum.AttestedAlready++
		case j.doc != nil:
			p.sum.Attested++
		case j.res.Already:
			p.sum.SignedAlready++
		default:
			p.sum.Signed++
		}
		ev := Signed{Repo: j.repo.RepositoryStr(), Digest: j.d, Tag: j.res.Tag, Fingerprint: p.o.Signer.Key.Fingerprint, Already: j.res.Already}
		if j.doc != nil {
			ev.Attested = filepath.Base(j.doc.Path)
		}
		p.o.Events.Emit(ev)
	}
	p.signJobs = nil
}
