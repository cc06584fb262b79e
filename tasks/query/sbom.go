package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// SBOMUsage is the sbom command's usage, shown with usage errors.
const SBOMUsage = `Usage: container-registry.sh sbom <image>[:tag] [--platform os/arch] [--kind sbom|cve|manifest] [--output FILE]

  sbom container-base                          the SPDX document of :latest (one platform)
  sbom container-base:20260112-143022 --platform linux/arm64 --output sbom.spdx.json
  sbom container-base --platform linux/amd64 --kind manifest`

// SBOMOptions says which attached document to fetch.
type SBOMOptions struct {
	Image    string // image[:tag], tag latest when absent
	Platform string // os/arch[/variant]; needed when the tag has several
	Kind     string // deploy.DocSBOM (default), DocCVECheck or DocManifest
}

// Document is one attached build document, fetched.
type Document struct {
	Repo         string  `json:"repo"`
	Tag          string  `json:"tag"`
	Platform     string  `json:"platform"`
	Subject      v1.Hash `json:"subject"`
	Artifact     v1.Hash `json:"artifact"`
	ArtifactType string  `json:"artifact_type"`
	Title        string  `json:"title"`
	// API is true when the registry's referrers API listed it, false for
	// the referrers tag.
	API  bool   `json:"api"`
	Data []byte `json:"-"`
}

// SBOM fetches the document of kind o.Kind attached to one platform of
// o.Image (the newest by its created annotation when there are several).
func SBOM(ctx context.Context, t *registry.Target, o SBOMOptions) (*Document, error) {
	if o.Image == "" {
		return nil, &tasks.UsageError{Msg: "Image name required", Usage: SBOMUsage}
	}
	if o.Kind == "" {
		o.Kind = deploy.DocSBOM
	}
	kind, ok := deploy.KindOf(o.Kind)
	if !ok {
		return nil, &tasks.UsageError{Msg: fmt.Sprintf("--kind %q: want sbom, cve or manifest", o.Kind), Usage: SBOMUsage}
	}
	var want *v1.Platform
	if o.Platform != "" {
		p, err := platform.Parse(o.Platform)
		if err != nil {
			return nil, &tasks.UsageError{Msg: "--platform " + err.Error(), Usage: SBOMUsage}
		}
		want = &p
	}
	image, tag := splitTag(o.Image)
	ref, err := t.Tag(image, tag)
	if err != nil {
		return nil, &tasks.UsageError{Msg: fmt.Sprintf("image %q: %v", o.Image, err), Usage: SBOMUsage}
	}
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	subject, plat, err := subjectOf(ctx, t, ref, want)
	if err != nil {
		return nil, err
	}
	refs, err := t.Referrers(ctx, ref.Context(), subject.Digest)
	if err != nil {
		return nil, err
	}
	pick, err := newest(refs.Manifests, kind.ArtifactType)
	if err != nil {
		return nil, fmt.Errorf("%s:%s (%s, %s): %w", ref.RepositoryStr(), tag, plat, subject.Digest, err)
	}
	doc := &Document{Repo: ref.RepositoryStr(), Tag: tag, Platform: plat, Subject: subject.Digest, Artifact: pick.Digest,
		ArtifactType: pick.ArtifactType, Title: pick.Annotations["org.opencontainers.image.title"], API: refs.API}
	doc.Data, err = fetchDocument(ctx, t, ref.Context(), pick.Digest)
	return doc, err
}

// splitTag splits image[:tag] (tag latest when absent).
func splitTag(s string) (string, string) {
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:]
	}
	return s, "latest"
}

// subjectOf returns the image manifest of ref for want (nil: the only
// one) and its platform.
func subjectOf(ctx context.Context, t *registry.Target, ref name.Tag, want *v1.Platform) (v1.Descriptor, string, error) {
	d, err := remote.Get(ref, t.Options(ctx)...)
	if registry.IsNotFound(err) {
		return v1.Descriptor{}, "", fmt.Errorf("Image not found: %s:%s (see `%s tags %s`)", ref.RepositoryStr(), ref.TagStr(), t.Script, ref.RepositoryStr())
	}
	if err != nil {
		return v1.Descriptor{}, "", err
	}
	if d.MediaType.IsImage() {
		img, err := d.Image()
		if err != nil {
			return v1.Descriptor{}, "", err
		}
		cf, err := registry.ConfigFile(img)
		if err != nil {
			return v1.Descriptor{}, "", fmt.Errorf("%s:%s: %w", ref.RepositoryStr(), ref.TagStr(), err)
		}
		p := platform.OfConfig(cf)
		if want != nil && !platform.Matches(p, *want) {
			return v1.Descriptor{}, "", fmt.Errorf("%s:%s is %s only, not %s", ref.RepositoryStr(), ref.TagStr(), platform.String(p), platform.String(*want))
		}
		return d.Descriptor, platform.String(p), nil
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &im); err != nil {
		return v1.Descriptor{}, "", fmt.Errorf("%s:%s: %w", ref.RepositoryStr(), ref.TagStr(), err)
	}
	var all []string
	var match []v1.Descriptor
	for _, e := range im.Manifests {
		if !e.MediaType.IsImage() || e.Platform == nil {
			continue
		}
		p := platform.Normalize(*e.Platform)
		all = append(all, platform.String(p))
		if want == nil || platform.Matches(p, *want) {
			match = append(match, e)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], platform.String(platform.Normalize(*match[0].Platform)), nil
	case want == nil && len(match) > 1:
		return v1.Descriptor{}, "", &tasks.UsageError{Msg: fmt.Sprintf("%s:%s has %d platforms (%s): choose one with --platform", ref.RepositoryStr(), ref.TagStr(), len(all), strings.Join(all, ", ")), Usage: SBOMUsage}
	case want != nil && len(match) == 0:
		return v1.Descriptor{}, "", fmt.Errorf("%s:%s has no %s image (platforms: %s)", ref.RepositoryStr(), ref.TagStr(), platform.String(*want), strings.Join(all, ", "))
	}
	return v1.Descriptor{}, "", fmt.Errorf("%s:%s: %d images match %s", ref.RepositoryStr(), ref.TagStr(), len(match), platform.String(*want))
}

// errNoDocument says nothing of the asked type is attached.
var errNoDocument = errors.New("no such document attached")

// newest is the referrer of artifactType with the latest created
// annotation (the last listed of equals).
func newest(refs []v1.Descriptor, artifactType string) (v1.Descriptor, error) {
	var of []v1.Descriptor
	for _, r := range refs {
		if r.ArtifactType == artifactType {
			of = append(of, r)
		}
	}
	if len(of) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: nothing of type %s (push attaches it when the build wrote one; see CONTAINER_REGISTRY_ATTACH)", errNoDocument, artifactType)
	}
	sort.SliceStable(of, func(i, j int) bool {
		return of[i].Annotations["org.opencontainers.image.created"] < of[j].Annotations["org.opencontainers.image.created"]
	})
	return of[len(of)-1], nil
}

// fetchDocument reads the artifact manifest dgst and its first blob,
// verified against its digest.
func fetchDocument(ctx context.Context, t *registry.Target, repo name.Repository, dgst v1.Hash) ([]byte, error) {
	d, err := remote.Get(repo.Digest(dgst.String()), t.Options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("reading artifact %s: %w", dgst, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(d.Manifest, &m); err != nil || len(m.Layers) == 0 {
		return nil, fmt.Errorf("artifact %s has no document blob", dgst)
	}
	if m.Layers[0].Size > deploy.MaxDocumentBytes {
		return nil, &registry.TooLargeError{What: "document blob " + m.Layers[0].Digest.String(), Size: m.Layers[0].Size, Limit: deploy.MaxDocumentBytes}
	}
	l, err := remote.Layer(repo.Digest(m.Layers[0].Digest.String()), t.Options(ctx)...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed() // verifies the digest as it reads
	if err != nil {
		return nil, fmt.Errorf("reading document blob %s: %w", m.Layers[0].Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, deploy.MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading document blob %s: %w", m.Layers[0].Digest, err)
	}
	if len(data) > deploy.MaxDocumentBytes {
		return nil, &registry.TooLargeError{What: "document blob " + m.Layers[0].Digest.String(), Size: -1, Limit: deploy.MaxDocumentBytes}
	}
	return data, nil
}

// ImageArtifacts is what is attached to one platform image of a tag.
type ImageArtifacts struct {
	Tag      string  `json:"tag"`
	Platform string  `json:"platform"`
	Manifest v1.Hash `json:"manifest"`
	// Via is "referrers API" or "referrers tag".
	Via       string     `json:"via"`
	Artifacts []Artifact `json:"artifacts"`
}

// Artifact is one referrer of an image manifest.
type Artifact struct {
	ArtifactType string  `json:"artifact_type"`
	Digest       v1.Hash `json:"digest"`
	Title        string  `json:"title,omitempty"`
	Created      string  `json:"created,omitempty"`
}

// Artifacts lists the referrers of every platform image of every tag of
// repo (the referrers tags themselves left out); images without any are
// left out.
func Artifacts(ctx context.Context, t *registry.Target, repo name.Repository, tags []string) ([]ImageArtifacts, error) {
	cache := map[v1.Hash]*registry.Referrers{}
	out := []ImageArtifacts{}
	for _, tag := range tags {
		if registry.IsFallbackTag(tag) {
			continue
		}
		subjects, err := platformImages(ctx, t, repo.Tag(tag))
		if err != nil {
			return nil, err
		}
		for _, s := range subjects {
			refs, ok := cache[s.Digest]
			if !ok {
				if refs, err = t.Referrers(ctx, repo, s.Digest); err != nil {
					return nil, err
				}
				cache[s.Digest] = refs
			}
			if len(refs.Manifests) == 0 {
				continue
			}
			ia := ImageArtifacts{Tag: tag, Platform: s.plat, Manifest: s.Digest, Via: "referrers tag"}
			if refs.API {
				ia.Via = "referrers API"
			}
			for _, r := range refs.Manifests {
				ia.Artifacts = append(ia.Artifacts, Artifact{ArtifactType: r.ArtifactType, Digest: r.Digest,
					Title: r.Annotations["org.opencontainers.image.title"], Created: r.Annotations["org.opencontainers.image.created"]})
			}
			out = append(out, ia)
		}
	}
	return out, nil
}

type platformImage struct {
	v1.Descriptor
	plat string
}

// platformImages are the image manifests a tag holds, with platforms.
func platformImages(ctx context.Context, t *registry.Target, ref name.Tag) ([]platformImage, error) {
	d, err := remote.Get(ref, t.Options(ctx)...)
	if registry.IsNotFound(err) {
		return nil, nil // deleted since the listing
	}
	if err != nil {
		return nil, err
	}
	if d.MediaType.IsImage() {
		plat := ""
		if img, err := d.Image(); err == nil {
			if cf, err := registry.ConfigFile(img); err == nil {
				plat = platform.String(platform.OfConfig(cf))
			}
		}
		return []platformImage{{d.Descriptor, plat}}, nil
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &im); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	var out []platformImage
	for _, e := range im.Manifests {
		if e.MediaType.IsImage() && e.Platform != nil {
			out = append(out, platformImage{e, platform.String(platform.Normalize(*e.Platform))})
		}
	}
	return out, nil
}
