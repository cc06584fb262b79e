package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/taglock"
)

// maxIndexAttempts bounds the read-modify-write retries of one tag;
// indexStep is their back-off step (untilDone).
const (
	maxIndexAttempts = 5
	indexStep        = 20 * time.Millisecond
)

// TagWriter writes the image index of a tag, merging it with what the
// registry already holds there: entries for other platforms are kept, the
// platforms being pushed are replaced. The write is a read-modify-write
// guarded by the registry's tag lock and verified by reading the tag back;
// a concurrent change makes it merge again. Under a lock every pusher
// takes (Lock.Guards), the lock alone keeps the write safe: it is one
// read and one write.
type TagWriter struct {
	Pusher *remote.Pusher
	Puller *remote.Puller
	// Lock is taken around each read-modify-write (nil: none).
	Lock *taglock.Lock
}

// TagResult is what a tag now holds.
type TagResult struct {
	Digest v1.Hash
	// Kept are the entries of other platforms that were already there.
	Kept []v1.Descriptor
	// Entries is every entry of the written index.
	Entries []v1.Descriptor
	// Unchanged says the tag already held exactly this index, so nothing
	// was written (a re-push of unchanged images).
	Unchanged bool
}

// Write makes ref an OCI image index of wants (each with its Platform
// set) plus the other platforms already at ref. asIs, when not nil, is an
// index holding exactly wants that is written byte for byte if nothing is
// kept (a multi-arch layout pushed as the index it is).
func (w *TagWriter) Write(ctx context.Context, ref name.Tag, wants []v1.Descriptor, asIs v1.ImageIndex) (*TagResult, error) {
	var res *TagResult
	done, err := untilDone(ctx, maxIndexAttempts, indexStep, func() (done bool, err error) {
		res, done, err = w.attempt(ctx, ref, wants, asIs)
		return done, err
	})
	if err != nil || done {
		return res, err
	}
	return nil, fmt.Errorf("tag %s kept changing while merging its index (%d attempts); try again", ref, maxIndexAttempts)
}

func (w *TagWriter) attempt(ctx context.Context, ref name.Tag, wants []v1.Descriptor, asIs v1.ImageIndex) (*TagResult, bool, error) {
	unlock, err := w.Lock.Lock(ctx, ref.Context().RepositoryStr(), ref.TagStr())
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	before, kept, err := w.existing(ctx, ref, wants)
	if err != nil {
		return nil, false, err
	}
	entries := append(append([]v1.Descriptor{}, wants...), kept...)
	sort.SliceStable(entries, func(i, j int) bool {
		return platform.Key(entries[i].Platform) < platform.Key(entries[j].Platform)
	})
	m, err := indexOf(entries, asIs, asIs != nil && len(kept) == 0 && samePlatforms(asIs, wants))
	if err != nil {
		return nil, false, err
	}
	ours, _, err := v1.SHA256(bytes.NewReader(m.Data))
	if err != nil {
		return nil, false, err
	}
	if before == ours {
		// Already there byte for byte: writing it again would only cost
		// the registry a manifest and tag update.
		return &TagResult{Digest: ours, Kept: kept, Entries: entries, Unchanged: true}, true, nil
	}
	res := &TagResult{Digest: ours, Kept: kept, Entries: entries}
	if w.Lock.Guards() {
		// Every pusher of this registry takes the lock around its
		// read-modify-write: nobody changed the tag since it was read,
		// and nobody replaces it before the lock is let go.
		if err := w.Pusher.Put(ctx, ref, m); err != nil {
			return nil, false, fmt.Errorf("writing index of %s: %w", ref, err)
		}
		return res, true, nil
	}
	// Optimistic check: nobody changed the tag since it was read.
	now, err := head(ctx, w.Puller, ref)
	if err != nil {
		return nil, false, err
	}
	if now != before {
		return nil, false, nil
	}
	if err := w.Pusher.Put(ctx, ref, m); err != nil {
		return nil, false, fmt.Errorf("writing index of %s: %w", ref, err)
	}
	// Read back: a concurrent writer may have replaced it; if what is
	// there now lacks our entries, merge again on top of it.
	back, err := head(ctx, w.Puller, ref)
	if err != nil {
		return nil, false, err
	}
	if back == ours {
		return res, true, nil
	}
	d, err := w.Puller.Get(ctx, ref)
	if err != nil {
		return nil, false, fmt.Errorf("reading back %s: %w", ref, err)
	}
	if d.MediaType.IsIndex() {
		var im v1.IndexManifest
		if err := json.Unmarshal(d.Manifest, &im); err == nil && containsAll(im.Manifests, wants) {
			res.Digest = d.Digest
			res.Entries = im.Manifests
			return res, true, nil
		}
	}
	return nil, false, nil
}

// indexOf is the index to write: asIs as it is when useAsIs (a nested
// multi-arch layout pushed alone), else an OCI index of entries.
func indexOf(entries []v1.Descriptor, asIs v1.ImageIndex, useAsIs bool) (registry.RawManifest, error) {
	if asIs != nil && useAsIs {
		data, err := asIs.RawManifest()
		if err != nil {
			return registry.RawManifest{}, err
		}
		mt, err := asIs.MediaType()
		if err != nil {
			return registry.RawManifest{}, err
		}
		return registry.RawManifest{Data: data, Type: mt}, nil
	}
	data, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries})
	if err != nil {
		return registry.RawManifest{}, err
	}
	return registry.RawManifest{Data: data, Type: types.OCIImageIndex}, nil
}

// Holds reports whether ref is an index that contains every want.
func (w *TagWriter) Holds(ctx context.Context, ref name.Tag, wants []v1.Descriptor) (bool, error) {
	d, err := w.Puller.Get(ctx, ref)
	if registry.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading back %s: %w", ref, err)
	}
	if !d.MediaType.IsIndex() {
		return false, nil
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &im); err != nil {
		return false, nil
	}
	return containsAll(im.Manifests, wants), nil
}

// head returns the digest at ref, or the zero hash when there is none.
func head(ctx context.Context, puller *remote.Puller, ref name.Tag) (v1.Hash, error) {
	d, err := puller.Head(ctx, ref)
	if registry.IsNotFound(err) {
		return v1.Hash{}, nil
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("checking %s: %w", ref, err)
	}
	return d.Digest, nil
}

// existing reads what ref holds and returns the entries to keep: those of
// platforms not in wants.
func (w *TagWriter) existing(ctx context.Context, ref name.Tag, wants []v1.Descriptor) (v1.Hash, []v1.Descriptor, error) {
	d, err := w.Puller.Get(ctx, ref)
	if registry.IsNotFound(err) {
		return v1.Hash{}, nil, nil
	}
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("reading existing %s: %w", ref, err)
	}
	ours := map[string]bool{}
	for _, want := range wants {
		ours[platform.Key(want.Platform)] = true
	}
	var kept []v1.Descriptor
	switch {
	case d.MediaType.IsIndex():
		var im v1.IndexManifest
		if err := json.Unmarshal(d.Manifest, &im); err != nil {
			return v1.Hash{}, nil, fmt.Errorf("existing index at %s: %w", ref, err)
		}
		dropped := map[string]bool{}
		for _, e := range im.Manifests {
			if e.Platform != nil && ours[platform.Key(e.Platform)] {
				dropped[e.Digest.String()] = true
			}
		}
		for _, e := range im.Manifests {
			if e.Platform != nil && ours[platform.Key(e.Platform)] {
				continue
			}
			// Attestations of a replaced image go with it.
			if dropped[e.Annotations["vnd.docker.reference.digest"]] {
				continue
			}
			kept = append(kept, e)
		}
	case d.MediaType.IsImage():
		img, err := d.Image()
		if err != nil {
			return v1.Hash{}, nil, fmt.Errorf("existing image at %s: %w", ref, err)
		}
		cf, err := registry.ConfigFile(img)
		if err != nil {
			return v1.Hash{}, nil, fmt.Errorf("existing image at %s: %w", ref, err)
		}
		p := platform.OfConfig(cf)
		if !ours[platform.Key(&p)] && p.Architecture != "" {
			desc := d.Descriptor
			desc.Platform = &p
			kept = append(kept, desc)
		}
	}
	return d.Digest, kept, nil
}

func samePlatforms(idx v1.ImageIndex, wants []v1.Descriptor) bool {
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != len(wants) {
		return false
	}
	return containsAll(im.Manifests, wants)
}

// containsAll reports whether every want's digest is in entries.
func containsAll(entries, wants []v1.Descriptor) bool {
	have := map[v1.Hash]bool{}
	for _, e := range entries {
		have[e.Digest] = true
	}
	for _, w := range wants {
		if !have[w.Digest] {
			return false
		}
	}
	return true
}

// untilDone calls try until it reports done or fails, at most attempts
// times, and reports whether it got done. It is the back-off of optimistic
// read-modify-writes (and re-puts) that met a concurrent writer: before
// try n+1 it waits a random pause of up to n×step, so writers that
// collided try again apart; ctx ending stops it.
func untilDone(ctx context.Context, attempts int, step time.Duration, try func() (done bool, err error)) (bool, error) {
	for n := 1; ; n++ {
		done, err := try()
		if err != nil || done || n >= attempts {
			return done, err
		}
		select {
		case <-ctx.Done():
			return false, context.Cause(ctx)
		case <-time.After(time.Duration(rand.Int64N(int64(n)*int64(step) + 1))):
		}
	}
}
