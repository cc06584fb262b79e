package ui

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// Artifact is something attached to a manifest through the OCI referrers
// API: an SBOM, a package list, a signature.
type Artifact struct {
	ArtifactType string
	MediaType    string
	Digest       digest.Digest
	Size         int64
	// Title is the org.opencontainers.image.title annotation, if any.
	Title string
	// Href is where the page links to view or download it (empty: no link).
	Href string
}

// Artifacts lists what is attached to the manifest subject of repo. The
// referrers support of serve provides one (Site.SetArtifacts); until then
// the image page says that nothing is attached.
type Artifacts interface {
	Artifacts(ctx context.Context, repo string, subject digest.Digest) ([]Artifact, error)
}

// SetArtifacts makes the image page list what a provides. Call it before
// serving; a nil Site ignores it.
func (s *Site) SetArtifacts(a Artifacts) {
	if s != nil {
		s.artifacts = a
	}
}

// attached is one artifact and what it is attached to (a platform, or the
// index).
type attached struct {
	For string
	Artifact
}

// attachedTo lists the artifacts of every manifest of im; none without an
// Artifacts source.
func (s *Site) attachedTo(ctx context.Context, repo string, im *Image) ([]attached, error) {
	if s.artifacts == nil {
		return nil, nil
	}
	var out []attached
	add := func(what string, d digest.Digest) error {
		list, err := s.artifacts.Artifacts(ctx, repo, d)
		for _, a := range list {
			if a.Href == "" {
				a.Href = artifactHref(repo, a.Digest)
			}
			out = append(out, attached{For: what, Artifact: a})
		}
		return err
	}
	if im.Index {
		if err := add("index", im.Digest); err != nil {
			return out, err
		}
	}
	for _, p := range im.Platforms {
		if err := add(p.Name, p.Digest); err != nil {
			return out, err
		}
	}
	return out, nil
}
