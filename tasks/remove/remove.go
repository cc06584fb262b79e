// Package remove deletes exactly one tag of a repository and then prunes
// the manifests no remaining tag reaches (an index and its platform
// manifests), so a plain gc frees their blobs.
package remove

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// Usage is the usage of `delete`, with examples.
func Usage(script, namespace string) string {
	return fmt.Sprintf(`Usage: %[1]s delete <image>:<tag>

Deletes exactly one tag; other tags of the same image stay. When no other
tag uses the image any more, its manifests go too; then run
'%[1]s gc' to reclaim the disk space.

Examples:
  %[1]s delete container-base:20260112-143022
  %[1]s delete %[2]s/container-base:latest`, script, namespace)
}

// SplitImageTag splits "name:tag" at the colon after the last '/' (a
// registry port is not a tag). ok is false when there is no tag.
func SplitImageTag(ref string) (image, tag string, ok bool) {
	slash := strings.LastIndexByte(ref, '/')
	colon := strings.LastIndexByte(ref, ':')
	if colon <= slash || colon == len(ref)-1 {
		return ref, "", false
	}
	return ref[:colon], ref[colon+1:], true
}

// Result is what Tag did.
type Result struct {
	Repo, Tag string
	Digest    string   // the manifest the tag pointed at
	Pruned    []string // manifests removed because no other tag uses them
	// Signatures are the signature and attestation tags removed with the
	// pruned manifests (sha256-<hex>.sig, .att).
	Signatures []string
	// PruneErr is set when the tag is gone but its manifests could not be
	// pruned (gc --delete-untagged removes them).
	PruneErr error
}

// TagNotFoundError says the tag to delete does not exist.
type TagNotFoundError struct{ Repo, Tag, Hint string }

func (e *TagNotFoundError) Error() string {
	msg := fmt.Sprintf("Tag not found: %s:%s", e.Repo, e.Tag)
	if e.Hint != "" {
		msg += " (see `" + e.Hint + "`)"
	}
	return msg
}

// Tag removes exactly the tag of ref ("image:tag"; the namespace is added
// when image has no '/'). It uses the registry's tag deletion
// (DELETE /v2/<name>/manifests/<tag>), which unlinks only that tag: other
// tags on the same manifest survive. A registry that cannot delete a tag
// alone is refused rather than deleting the manifest by digest, which would
// take every tag on it. Manifests no other tag reaches are pruned after.
func Tag(ctx context.Context, t *registry.Target, ref string) (*Result, error) {
	c := t.Config
	usage := Usage(t.Script, c.Namespace)
	image, tag, ok := SplitImageTag(ref)
	if ref == "" || !ok || image == "" {
		msg := "Tag required: use <image>:<tag>"
		if ref != "" {
			msg = fmt.Sprintf("Tag required: %q has no tag; use <image>:<tag>", ref)
		}
		return nil, &tasks.UsageError{Msg: msg, Usage: usage}
	}
	repo, err := t.Repo(image)
	if err != nil {
		return nil, &tasks.UsageError{Msg: fmt.Sprintf("invalid image reference %q: %v", ref, err), Usage: usage}
	}
	tagRef, err := t.Tag(image, tag)
	if err != nil {
		return nil, &tasks.UsageError{Msg: fmt.Sprintf("invalid image reference %q: %v", ref, err), Usage: usage}
	}
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	res := &Result{Repo: repo.RepositoryStr(), Tag: tag}
	desc, err := remote.Head(tagRef, t.Options(ctx)...)
	if registry.IsNotFound(err) {
		return nil, &TagNotFoundError{Repo: res.Repo, Tag: tag, Hint: t.Script + " tags " + image}
	}
	if err != nil {
		return nil, err
	}
	res.Digest = desc.Digest.String()
	err = remote.Delete(tagRef, t.Options(ctx)...)
	var te *transport.Error
	switch {
	case err == nil:
	case registry.IsNotFound(err):
		return nil, &TagNotFoundError{Repo: res.Repo, Tag: tag}
	case errors.As(err, &te) && (te.StatusCode == http.StatusMethodNotAllowed || te.StatusCode == http.StatusBadRequest || hasCode(te, transport.UnsupportedErrorCode)):
		return nil, fmt.Errorf("the registry at %s cannot delete the tag %s:%s alone (%d); refusing to delete its manifest by digest, which would remove every tag on it. Enable storage.delete in %s",
			t.URL(), res.Repo, tag, te.StatusCode, c.RegistryConfig())
	default:
		return nil, err
	}
	res.Pruned, res.PruneErr = pruneManifests(ctx, t, repo, res.Digest)
	for _, d := range res.Pruned {
		for _, suffix := range []string{sign.SigSuffix, sign.AttSuffix} {
			if res.PruneErr != nil {
				break
			}
			var sig string
			if sig, res.PruneErr = removeSignatures(ctx, t, repo, d, suffix); sig != "" {
				res.Signatures = append(res.Signatures, sig)
			}
		}
	}
	return res, nil
}

// removeSignatures deletes the signature (suffix .sig) or attestation
// (.att) tag of manifest d and the manifest it names, and returns the tag
// ("" when d has none).
func removeSignatures(ctx context.Context, t *registry.Target, repo name.Repository, d, suffix string) (string, error) {
	h, err := v1.NewHash(d)
	if err != nil {
		return "", err
	}
	tag := repo.Tag(h.Algorithm + "-" + h.Hex + suffix)
	desc, err := remote.Head(tag, t.Options(ctx)...)
	if registry.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", tag, err)
	}
	if err := remote.Delete(tag, t.Options(ctx)...); err != nil && !registry.IsNotFound(err) {
		return "", fmt.Errorf("deleting %s: %w", tag, err)
	}
	if err := remote.Delete(repo.Digest(desc.Digest.String()), t.Options(ctx)...); err != nil && !registry.IsNotFound(err) {
		return tag.TagStr(), fmt.Errorf("deleting the signature manifest %s@%s: %w", repo.RepositoryStr(), desc.Digest, err)
	}
	return tag.TagStr(), nil
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// pruneManifests deletes, by digest, the manifest a deleted tag pointed at
// and the manifests it lists, as long as no remaining tag of the
// repository reaches them (directly or through an index). Other tags'
// images are never touched. It returns the digests it removed.
func pruneManifests(ctx context.Context, t *registry.Target, r name.Repository, digest string) ([]string, error) {
	opts := t.Options(ctx)
	repo := r.RepositoryStr()
	tags, err := remote.List(r, opts...)
	if err != nil && !registry.IsNotFound(err) {
		return nil, fmt.Errorf("listing the remaining tags: %w", err)
	}
	kept := map[string]bool{}
	for _, tag := range tags {
		if _, ok := sign.IsAttachedTag(tag); ok {
			continue // a signature or attestation keeps nothing alive
		}
		if err := reach(r.Tag(tag), r, opts, kept); err != nil {
			return nil, fmt.Errorf("reading %s:%s: %w", repo, tag, err)
		}
	}
	if kept[digest] {
		return nil, nil
	}
	gone := map[string]bool{}
	if err := reach(r.Digest(digest), r, opts, gone); err != nil {
		return nil, fmt.Errorf("reading %s@%s: %w", repo, digest, err)
	}
	// The deleted tag's manifest first, then what it listed, so no index
	// ever points at a missing child.
	order := []string{digest}
	for d := range gone {
		if d != digest {
			order = append(order, d)
		}
	}
	var removed []string
	for _, d := range order {
		if kept[d] {
			continue
		}
		if err := remote.Delete(r.Digest(d), opts...); err != nil {
			return removed, fmt.Errorf("deleting %s@%s: %w", repo, d, err)
		}
		removed = append(removed, d)
	}
	return removed, nil
}

// reach adds the digest of ref's manifest, and of every manifest an index
// lists (recursively), to seen. Children missing from the registry (an
// index of platforms pushed elsewhere) are skipped.
func reach(ref name.Reference, repo name.Repository, opts []remote.Option, seen map[string]bool) error {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return err
	}
	d := desc.Digest.String()
	if seen[d] {
		return nil
	}
	seen[d] = true
	if !desc.MediaType.IsIndex() {
		return nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return err
	}
	for _, m := range idx.Manifests {
		if !m.MediaType.IsIndex() && !m.MediaType.IsImage() {
			continue
		}
		err := reach(repo.Digest(m.Digest.String()), repo, opts, seen)
		if registry.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}
