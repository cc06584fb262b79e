// Package transfer carries images out of the local registry with
// everything that refers to them: Promote copies them to another registry,
// Export writes them to one OCI image layout archive (a bundle), and
// ImportBundle reads such a bundle back into a registry.
//
// All three share one walk. From each selected tag it reaches every
// manifest (the index, every platform), every blob, and every referrer of
// every manifest: the OCI 1.1 referrers API where the source has it, else
// the referrers tag schema (sha256-<hex>), plus the tags other tools
// attach by the same convention (cosign's sha256-<hex>.sig and .att), so
// signatures travel with the images without this package knowing them.
//
// The package never prints: it returns results and emits events.
package transfer

import (
	"fmt"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
)

// MaxManifests bounds the manifests one run reaches (tags, platforms and
// referrers of every selected image, together); each is at most
// registry.MaxManifestBytes and is held in memory until it is written.
const MaxManifests = 20000

// Image is one repository's part of a transfer, as the walk found it.
type Image struct {
	// Name is the image name relative to the local namespace
	// ("container-base"), Repo its repository path ("yocto/container-base").
	Name string
	Repo string
	// Tags are the selected tags and the attached sha256-<hex>.<suffix>
	// tags of the manifests reached.
	Tags []Tag
	// Manifests are every manifest reached, each once: the children of an
	// index before it, a subject before its referrers.
	Manifests []Manifest
	// Blobs are the configs and layers of the manifests, each once.
	Blobs []v1.Descriptor
}

// Tag is a tag and the manifest it names.
type Tag struct {
	Name string
	Desc v1.Descriptor
	// Attached is true for a sha256-<hex>.<suffix> tag, found beside the
	// manifest it is about rather than selected.
	Attached bool
}

// Manifest is a manifest or index and its bytes.
type Manifest struct {
	Desc v1.Descriptor
	Raw  []byte
	// Subject is the manifest it refers to (nil: not a referrer).
	Subject *v1.Descriptor
}

// Referrers counts the manifests of img that refer to another.
func (img *Image) Referrers() int {
	n := 0
	for _, m := range img.Manifests {
		if m.Subject != nil {
			n++
		}
	}
	return n
}

// Selection says which images and tags a transfer takes.
type Selection struct {
	// Images are "name[:tag]" (no tag: latest, or the tags AllTags or
	// TagPattern select).
	Images []string
	// AllTags takes every tag of each image.
	AllTags bool
	// TagPattern takes the tags matching a shell pattern ("v1.*").
	TagPattern string
}

// request is one image argument, parsed.
type request struct {
	name string
	tag  string // "" when AllTags or TagPattern select
}

// parse checks the selection; usage is the command's usage text.
func (s Selection) parse(usage string) ([]request, error) {
	if len(s.Images) == 0 {
		return nil, &tasks.UsageError{Msg: "give at least one image", Usage: usage}
	}
	if s.TagPattern != "" {
		if _, err := path.Match(s.TagPattern, ""); err != nil {
			return nil, &tasks.UsageError{Msg: fmt.Sprintf("--tag-pattern %q: %v", s.TagPattern, err), Usage: usage}
		}
	}
	var out []request
	for _, arg := range s.Images {
		if strings.Contains(arg, "@") {
			return nil, &tasks.UsageError{Msg: fmt.Sprintf("image %q: give a tag, not a digest", arg), Usage: usage}
		}
		name, tag := arg, ""
		if i := strings.LastIndex(arg, ":"); i > strings.LastIndex(arg, "/") {
			name, tag = arg[:i], arg[i+1:]
			if err := imageref.ValidateTag(tag); err != nil {
				return nil, &tasks.UsageError{Msg: fmt.Sprintf("image %q: %v", arg, err), Usage: usage}
			}
		}
		if tag != "" && (s.AllTags || s.TagPattern != "") {
			return nil, &tasks.UsageError{Msg: fmt.Sprintf("image %q names a tag; --all-tags and --tag-pattern select the tags of an image given without one", arg), Usage: usage}
		}
		if tag == "" && !s.AllTags && s.TagPattern == "" {
			tag = "latest"
		}
		out = append(out, request{name: name, tag: tag})
	}
	return out, nil
}
