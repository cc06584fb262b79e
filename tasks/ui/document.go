package ui

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// artifactRoute is where the image page links an attached document:
// Prefix + artifactRoute + "<repository>@<manifest digest>".
const artifactRoute = "-/artifact/"

// artifactHref is the link to the document of artifact d in repo.
func artifactHref(repo string, d digest.Digest) string {
	return Prefix + artifactRoute + repo + "@" + d.String()
}

// maxDocument bounds a document the page serves (build documents are far
// smaller; an image layer attached as an artifact is not one).
const maxDocument = 64 << 20

// document serves the one file of an artifact manifest that has a subject
// (what push attaches: an SBOM, a package list), to view in the browser or,
// with ?download=1, to save. JSON is served as JSON, anything else as
// plain text: never as a type the browser would run.
func (s *Site) document(w http.ResponseWriter, r *http.Request, ref string) {
	i := strings.LastIndexByte(ref, '@')
	if i < 0 {
		s.notFound(w, "No artifact "+ref+": want "+Prefix+artifactRoute+"<repository>@<digest>")
		return
	}
	named, err := reference.WithName(ref[:i])
	dgst, derr := digest.Parse(ref[i+1:])
	if err != nil || derr != nil {
		s.notFound(w, "No artifact "+ref+": want "+Prefix+artifactRoute+"<repository>@<digest>")
		return
	}
	ctx := r.Context()
	repo, err := s.ns.Repository(ctx, named)
	if err != nil {
		s.notFound(w, "No artifact "+ref)
		return
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		s.notFound(w, "No artifact "+ref)
		return
	}
	m, err := ms.Get(ctx, dgst)
	if err != nil {
		s.notFound(w, "No artifact "+ref+" in this registry.")
		return
	}
	_, payload, _ := m.Payload()
	var am v1.Manifest
	if json.Unmarshal(payload, &am) != nil || am.Subject == nil || len(am.Layers) != 1 || am.Layers[0].Size > maxDocument {
		s.notFound(w, ref+" is not an attached document (one file, with a subject).")
		return
	}
	layer := am.Layers[0]
	blob, err := repo.Blobs(ctx).Open(ctx, layer.Digest)
	if err != nil {
		s.notFound(w, "The file of "+ref+" is not in this registry.")
		return
	}
	defer blob.Close()
	name := layer.Annotations[v1.AnnotationTitle]
	if name == "" || strings.ContainsAny(name, "/\\") {
		name = dgst.Encoded()[:12]
	}
	disposition := "inline"
	if r.URL.Query().Get("download") != "" {
		disposition = "attachment"
	}
	h := w.Header()
	h.Set("Content-Type", documentType(layer.MediaType))
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, blob)
}

// documentType is the type a document is served as: JSON stays JSON,
// anything else is plain text.
func documentType(mediaType string) string {
	base, _, _ := mime.ParseMediaType(mediaType)
	if base == "application/json" || strings.HasSuffix(base, "+json") {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}
