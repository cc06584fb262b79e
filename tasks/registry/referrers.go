package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/redact"
)

// Referrers is what refers to one manifest (OCI distribution-spec v1.1).
type Referrers struct {
	// API is true when the registry answered the referrers API; else the
	// list is the referrers tag schema's index (the fallback tag).
	API bool
	// Manifests are the referrer descriptors, with artifactType and
	// annotations.
	Manifests []v1.Descriptor
}

// FallbackTag is the referrers tag schema's tag of subject in repo:
// sha256-<hex>.
func FallbackTag(repo name.Repository, subject v1.Hash) name.Tag {
	return repo.Tag(subject.Algorithm + "-" + subject.Hex)
}

// IsFallbackTag reports whether tag is a tag FallbackTag names (the
// listings leave them out: they hold referrers, not images).
func IsFallbackTag(tag string) bool {
	alg, hex, ok := strings.Cut(tag, "-")
	if !ok {
		return false
	}
	_, err := v1.NewHash(alg + ":" + hex)
	return err == nil
}

// Referrers lists the manifests of repo whose subject is subject: through
// the referrers API when the registry has it, else from the fallback tag
// (an absent tag is an empty list).
func (t *Target) Referrers(ctx context.Context, repo name.Repository, subject v1.Hash) (*Referrers, error) {
	client, err := t.Client(ctx, repo, transport.PullScope, nil)
	if err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/referrers/%s", t.Registry.Scheme(), t.Registry.RegistryStr(), repo.RepositoryStr(), subject)
	res := &Referrers{}
	for page := 0; u != "" && page < MaxReferrersPages; page++ {
		im, next, ok, err := referrersPage(ctx, client, u)
		if err != nil {
			return nil, fmt.Errorf("referrers of %s: %w", subject, err)
		}
		if !ok {
			return t.fallbackReferrers(ctx, repo, subject)
		}
		res.API = true
		res.Manifests = append(res.Manifests, im.Manifests...)
		if next != "" {
			// The next page comes from the registry itself: a Link to
			// another host (or scheme) is not followed.
			nu, err := url.Parse(next)
			if err != nil || nu.Scheme != t.Registry.Scheme() || nu.Host != t.Registry.RegistryStr() {
				return nil, fmt.Errorf("referrers of %s: the registry's next page is on another host (%s); not followed", subject, redact.URL(next))
			}
		}
		u = next
	}
	return res, nil
}

// referrersPage GETs one page of the referrers API. ok is false when the
// registry does not implement it (any answer but 200 with an OCI index).
func referrersPage(ctx context.Context, client *http.Client, u string) (im v1.IndexManifest, next string, ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return im, "", false, err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := client.Do(req)
	if err != nil {
		return im, "", false, err
	}
	defer resp.Body.Close()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || mt != string(types.OCIImageIndex) {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return im, "", false, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxReferrersPageBytes+1))
	if err != nil {
		return im, "", false, err
	}
	if len(body) > MaxReferrersPageBytes {
		return im, "", false, &TooLargeError{What: "referrers page " + resp.Request.URL.Path, Size: -1, Limit: MaxReferrersPageBytes}
	}
	if err := json.Unmarshal(body, &im); err != nil {
		return im, "", false, fmt.Errorf("answer is not an image index: %w", err)
	}
	return im, nextLink(resp), true, nil
}

// nextLink is the absolute URL of a Link: <...>; rel="next" header.
func nextLink(resp *http.Response) string {
	for _, l := range resp.Header.Values("Link") {
		target, params, ok := strings.Cut(l, ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		ref, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return ""
		}
		return resp.Request.URL.ResolveReference(ref).String()
	}
	return ""
}

// fallbackReferrers reads the referrers tag schema's index of subject.
func (t *Target) fallbackReferrers(ctx context.Context, repo name.Repository, subject v1.Hash) (*Referrers, error) {
	im, _, err := t.FallbackIndex(ctx, repo, subject)
	if err != nil {
		return nil, err
	}
	return &Referrers{Manifests: im.Manifests}, nil
}

// FallbackIndex reads the fallback tag of subject: its index and digest
// (an empty index and the zero hash when the tag does not exist).
func (t *Target) FallbackIndex(ctx context.Context, repo name.Repository, subject v1.Hash) (v1.IndexManifest, v1.Hash, error) {
	return t.ReadFallback(ctx, FallbackTag(repo, subject), t.Options(ctx)...)
}

// ReadFallback reads the index at the fallback tag ref with opts (an
// empty index and the zero hash when the tag does not exist).
func (t *Target) ReadFallback(ctx context.Context, ref name.Tag, opts ...remote.Option) (v1.IndexManifest, v1.Hash, error) {
	empty := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	d, err := remote.Get(ref, opts...)
	if IsNotFound(err) {
		return empty, v1.Hash{}, nil
	}
	if err != nil {
		return empty, v1.Hash{}, fmt.Errorf("reading referrers tag %s: %w", ref.TagStr(), err)
	}
	if !d.MediaType.IsIndex() {
		return empty, v1.Hash{}, fmt.Errorf("referrers tag %s holds %s, not an image index", ref.TagStr(), d.MediaType)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &im); err != nil {
		return empty, v1.Hash{}, fmt.Errorf("referrers tag %s: %w", ref.TagStr(), err)
	}
	return im, d.Digest, nil
}

// TagSubject reads a tag of the referrers tag schema or one of the tags
// other tools attach by the same convention (cosign's
// sha256-<hex>.sig, .att, .sbom): "sha256-<hex>" or "sha256-<hex>.<suffix>".
// It returns the subject digest the tag is about.
func TagSubject(tag string) (v1.Hash, bool) {
	head, _, _ := strings.Cut(tag, ".")
	alg, hex, ok := strings.Cut(head, "-")
	if !ok {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(alg + ":" + hex)
	return h, err == nil
}
