package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// emptyConfig is the OCI empty descriptor's content (image-spec 1.1:
// artifacts without a config of their own).
var emptyConfig = static.NewLayer([]byte("{}"), "application/vnd.oci.empty.v1+json")

// maxReferrersAttempts bounds the read-modify-writes of one referrers
// tag: every pusher of an image's build documents meets the others there.
const maxReferrersAttempts = 10

// Attached is one build document attached to (or found already on) an
// image manifest.
type Attached struct {
	Image        string  `json:"image"`
	Platform     string  `json:"platform"`
	Subject      v1.Hash `json:"subject"`
	ArtifactType string  `json:"artifact_type"`
	Digest       v1.Hash `json:"digest"`
	File         string  `json:"file"`
	Unchanged    bool    `json:"unchanged"`
	// Fallback is true when the registry lacks the referrers API and the
	// referrers tag (sha256-<subject hex>) lists the artifact.
	Fallback bool `json:"fallback"`
}

// attachKinds are the document kinds this push attaches.
func (p *pushRun) attachKinds() []string {
	kinds := p.c.Attach
	if p.o.Attach != nil {
		kinds = nil
		if *p.o.Attach {
			kinds = p.c.Attach
			if len(kinds) == 0 {
				kinds = config.AttachDefault()
			}
		}
	}
	var out []string
	for _, k := range deploy.DocKinds {
		if slices.Contains(kinds, k.Setting) {
			out = append(out, k.Kind)
		}
	}
	return out
}

// attach pushes the build documents of src as artifacts whose subject is
// the image manifest desc of platform plat. An artifact the subject's
// referrers already list is not uploaded again.
func (p *pushRun) attach(ctx context.Context, repo name.Repository, src *deploy.Source, desc v1.Descriptor, plat string, im *image, ev events.Sink) error {
	kinds := p.attachKinds()
	var docs []deploy.Document
	for _, d := range src.Documents {
		if slices.Contains(kinds, d.Kind) {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	refs, err := p.t.Referrers(ctx, repo, desc.Digest)
	if err != nil {
		return err
	}
	var fallback []v1.Descriptor
	for _, d := range docs {
		art, err := p.pushArtifact(ctx, repo, src, d, desc, refs)
		if err != nil {
			return fmt.Errorf("attaching %s: %w", filepath.Base(d.Path), err)
		}
		a := Attached{Image: src.Name, Platform: plat, Subject: desc.Digest, ArtifactType: art.desc.ArtifactType,
			Digest: art.desc.Digest, File: filepath.Base(d.Path), Unchanged: art.listed, Fallback: !refs.API && !art.api}
		if !art.listed && !art.api && !refs.API {
			fallback = append(fallback, art.desc)
		}
		im.add(func(im *image) { im.attached = append(im.attached, a) })
		ev.Emit(ArtifactAttached{Attached: a})
		if d.Kind == deploy.DocSBOM {
			p.attest(ctx, repo, src.Name, desc.Digest, d)
		}
	}
	if len(fallback) == 0 {
		return nil
	}
	tag := registry.FallbackTag(repo, desc.Digest)
	if err := p.mergeReferrers(ctx, tag, fallback); err != nil {
		return err
	}
	im.add(func(im *image) {
		im.fallbacks = append(im.fallbacks, written{group: src.Name, ref: tag, wants: fallback})
	})
	return nil
}

// artifact is one pushed artifact manifest.
type artifact struct {
	desc   v1.Descriptor // as the referrers list carries it
	listed bool          // the referrers already listed it: nothing sent
	api    bool          // the registry answered OCI-Subject: it lists it
}

// pushArtifact builds the artifact manifest of document d for subject and,
// unless refs already lists it, uploads its blobs and puts it by digest.
func (p *pushRun) pushArtifact(ctx context.Context, repo name.Repository, src *deploy.Source, d deploy.Document, subject v1.Descriptor, refs *registry.Referrers) (*artifact, error) {
	data, err := deploy.ReadDocument(d)
	if err != nil {
		return nil, err
	}
	kind, _ := deploy.KindOf(d.Kind)
	layer := static.NewLayer(data, types.MediaType(kind.MediaType))
	raw, desc, err := artifactManifest(src, d, kind.ArtifactType, layer, subject)
	if err != nil {
		return nil, err
	}
	art := &artifact{desc: desc}
	if slices.ContainsFunc(refs.Manifests, func(m v1.Descriptor) bool { return m.Digest == desc.Digest }) {
		art.listed = true
		return art, nil
	}
	// A registry may lose sight of a blob another pusher uploads at the
	// same moment (distribution 2.8 then refuses the manifest, a blob
	// unknown: isBlobUnknown): check and upload again, then put again.
	var putErr error
	done, err := untilDone(ctx, maxIndexAttempts, 50*time.Millisecond, func() (bool, error) {
		for _, l := range []v1.Layer{emptyConfig, layer} {
			if err := p.uploadIfMissing(ctx, repo, l); err != nil {
				return false, err
			}
		}
		art.api, putErr = p.putArtifact(ctx, repo, desc.Digest, raw)
		if isBlobUnknown(putErr) {
			return false, nil // put again
		}
		return true, putErr
	})
	if err == nil && !done {
		err = putErr
	}
	if err != nil {
		return nil, err
	}
	return art, nil
}

// artifactManifest is the OCI image manifest (image-spec 1.1 artifact
// guidance: artifactType, the empty config, one layer) of document d
// whose subject is subject, and its descriptor as a referrers list
// carries it. It depends only on the document and the build, so a re-push
// of an unchanged build gives the same digest.
func artifactManifest(src *deploy.Source, d deploy.Document, artifactType string, layer v1.Layer, subject v1.Descriptor) ([]byte, v1.Descriptor, error) {
	ld, err := descriptorOf(layer)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	ld.Annotations = map[string]string{"org.opencontainers.image.title": filepath.Base(d.Path)}
	cd, err := descriptorOf(emptyConfig)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	annotations := map[string]string{"org.opencontainers.image.title": filepath.Base(d.Path)}
	if t, err := time.Parse("20060102150405", src.Stamp); err == nil {
		annotations["org.opencontainers.image.created"] = t.UTC().Format(time.RFC3339)
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: artifactType,
		Config: cd, Layers: []v1.Descriptor{ld}, Annotations: annotations,
		Subject: &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return raw, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: size,
		ArtifactType: m.ArtifactType, Annotations: annotations}, nil
}

func descriptorOf(l v1.Layer) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, err
}

// uploadIfMissing uploads l unless the registry has it (its bytes are not
// the images' and are not counted as uploaded).
func (p *pushRun) uploadIfMissing(ctx context.Context, repo name.Repository, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	client, err := p.client(ctx, repo)
	if err != nil {
		return err
	}
	ok, err := registry.BlobExists(ctx, client, repo, d)
	if err != nil || ok {
		return err
	}
	var sent atomic.Int64
	return p.uploadBlob(ctx, repo, &blob{l: l, d: d, size: size}, "", &sent)
}

// putArtifact puts an artifact manifest by digest and reports whether the
// registry answered OCI-Subject (it keeps the referrers list itself).
func (p *pushRun) putArtifact(ctx context.Context, repo name.Repository, dgst v1.Hash, raw []byte) (bool, error) {
	client, err := p.client(ctx, repo)
	if err != nil {
		return false, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), dgst)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(raw))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("putting artifact manifest: %w", err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusCreated, http.StatusOK); err != nil {
		return false, fmt.Errorf("putting artifact manifest: %w", err)
	}
	return resp.Header.Get("OCI-Subject") != "", nil
}

// mergeReferrers adds wants to the referrers tag's index by a
// read-modify-write that loses no entry of another pusher: it holds the
// registry's tag lock (taglock), checks just before the PUT that
// the tag is still what it read, reads the tag back after writing and
// merges again on top of whatever another pusher wrote; verifyTags checks
// it once more after a settle delay. go-containerregistry's own fallback
// (remote.Write with a subject) reads, appends and writes once: two
// pushers that read the same index each write theirs, and the later one
// drops the other's entry.
func (p *pushRun) mergeReferrers(ctx context.Context, tag name.Tag, wants []v1.Descriptor) error {
	done, err := untilDone(ctx, maxReferrersAttempts, 30*time.Millisecond, func() (bool, error) {
		return p.mergeReferrersOnce(ctx, tag, wants)
	})
	if err != nil || done {
		return err
	}
	return fmt.Errorf("referrers tag %s kept changing while merging (%d attempts); try again", tag.TagStr(), maxReferrersAttempts)
}

func (p *pushRun) mergeReferrersOnce(ctx context.Context, tag name.Tag, wants []v1.Descriptor) (bool, error) {
	unlock, err := p.lock.Lock(ctx, tag.Context().RepositoryStr(), tag.TagStr())
	if err != nil {
		return false, err
	}
	defer unlock()
	im, before, err := p.t.ReadFallback(ctx, tag, p.ropts...)
	if err != nil {
		return false, err
	}
	if containsAll(im.Manifests, wants) {
		return true, nil
	}
	merged := slices.Clone(im.Manifests)
	for _, w := range wants {
		if !containsAll(merged, []v1.Descriptor{w}) {
			merged = append(merged, w)
		}
	}
	sort.SliceStable(merged, func(i, j int) bool { return merged[i].Digest.String() < merged[j].Digest.String() })
	data, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: merged})
	if err != nil {
		return false, err
	}
	if now, err := head(ctx, p.puller, tag); err != nil || now != before {
		return false, err
	}
	if err := p.pusher.Put(ctx, tag, registry.RawManifest{Data: data, Type: types.OCIImageIndex}); err != nil {
		if isBlobUnknown(err) {
			// An entry another pusher is putting at this moment
			// (distribution 2.8 hides a manifest while it is rewritten):
			// merge again.
			return false, nil
		}
		return false, fmt.Errorf("writing referrers tag %s: %w", tag.TagStr(), err)
	}
	back, _, err := p.t.ReadFallback(ctx, tag, p.ropts...)
	if err != nil {
		return false, err
	}
	return containsAll(back.Manifests, wants), nil
}

// verifyReferrers reads every referrers tag this run merged into once
// more (after verifyTags' settle delay) and merges again when a
// concurrent pusher's write dropped our entries. A merge made here is
// checked again after another (jittered) delay, until a check finds every
// entry: a later pusher can only drop ours between its own check and its
// PUT, a window far shorter than the delay.
func (p *pushRun) verifyReferrers(ctx context.Context) {
	pending := p.fallbacks
	for round := 1; len(pending) > 0; round++ {
		if round > 1 && !p.o.settle(ctx, settleDelay+time.Duration(rand.Int64N(int64(settleDelay)))) {
			return
		}
		var again []written
		for _, w := range pending {
			im, _, err := p.t.ReadFallback(ctx, w.ref, p.ropts...)
			if err == nil && containsAll(im.Manifests, w.wants) {
				continue
			}
			if err == nil && round <= maxIndexAttempts {
				p.o.Events.Emit(Remerged{Tag: w.ref.TagStr()})
				if err = p.mergeReferrers(ctx, w.ref, w.wants); err == nil {
					again = append(again, w)
					continue
				}
			}
			if err == nil {
				err = fmt.Errorf("referrers tag %s kept losing entries to concurrent pushes (%d merges); push again", w.ref.TagStr(), maxIndexAttempts)
			}
			p.o.Events.Emit(ImageFailed{Image: w.group, Err: err})
			p.failed(w.group)
		}
		pending = again
	}
}

// isBlobUnknown reports whether a registry refused a manifest for a blob
// or manifest it references that it does not see (yet).
func isBlobUnknown(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestBlobUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
			return true
		}
	}
	return false
}
