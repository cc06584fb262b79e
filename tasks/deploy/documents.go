package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// The build documents oe-core writes beside an image in DEPLOY_DIR_IMAGE,
// named after the build's IMAGE_NAME (IMAGE_LINK_NAME plus the version
// suffix, e.g. container-base-qemux86-64.rootfs-20260108123456), with an
// IMAGE_LINK_NAME link to the newest:
//
//   - create-spdx-image-3.0: ${IMAGE_NAME}.spdx.json (SPDX 3.0 JSON-LD)
//   - sbom-cve-check: ${IMAGE_NAME}.sbom-cve-check.spdx.json
//   - rootfs-postcommands' write_image_manifest: ${IMAGE_NAME}.manifest
//     ("package arch version" lines)
const (
	DocSBOM     = "sbom"     // ${IMAGE_NAME}.spdx.json
	DocCVECheck = "cve"      // ${IMAGE_NAME}.sbom-cve-check.spdx.json
	DocManifest = "manifest" // ${IMAGE_NAME}.manifest
)

// Artifact types of the documents when pushed as OCI artifacts (the
// manifest's artifactType; the blob's media type is DocKind.MediaType):
//
//   - SPDX document: application/spdx+json, the IANA-registered type of
//     SPDX JSON and the one OCI tools look for (oras discover
//     --artifact-type, the distribution-spec's referrers filter, scanners
//     reading SBOM referrers).
//   - sbom-cve-check SPDX: application/vnd.yocto.sbom-cve-check.spdx+json:
//     SPDX as well (the SBOM plus vulnerabilities; its blob is
//     application/spdx+json), but of another role, so a filter for the SBOM
//     finds the SBOM alone.
//   - package list: application/vnd.yocto.image-manifest.v1+text, blob
//     text/plain: Yocto's own format, which has no registered type.
const (
	ArtifactSBOM     = "application/spdx+json"
	ArtifactCVECheck = "application/vnd.yocto.sbom-cve-check.spdx+json"
	ArtifactManifest = "application/vnd.yocto.image-manifest.v1+text"
)

// DocKind is one kind of build document: its file name suffix after
// IMAGE_NAME and how it is pushed.
type DocKind struct {
	Kind, Suffix string
	// ArtifactType is the artifact manifest's artifactType, MediaType its
	// one blob's.
	ArtifactType, MediaType string
	// Setting is the CONTAINER_REGISTRY_ATTACH word that attaches it.
	Setting string
}

// DocKinds are the build documents, in the order they are attached.
var DocKinds = []DocKind{
	{DocSBOM, ".spdx.json", ArtifactSBOM, "application/spdx+json", "sbom"},
	{DocCVECheck, ".sbom-cve-check.spdx.json", ArtifactCVECheck, "application/spdx+json", "sbom"},
	{DocManifest, ".manifest", ArtifactManifest, "text/plain", "manifest"},
}

// KindOf returns the DocKind called kind.
func KindOf(kind string) (DocKind, bool) {
	for _, k := range DocKinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return DocKind{}, false
}

// Document is one build document of a chosen image.
type Document struct {
	Kind string // DocSBOM, DocCVECheck or DocManifest
	// Path is the file as found (IMAGE_NAME plus suffix, beside the
	// layout); Real is where it leads when it is a link.
	Path, Real string
}

// Documents finds the build documents of the image whose layout is dir
// (symlinks resolved: the build the -latest-oci/IMAGE_LINK_NAME link chose
// or the newest stamp). The layout is ${IMAGE_NAME}-oci, so the documents
// are ${IMAGE_NAME}<suffix> in the same directory; builds that name the
// layout ${IMAGE_NAME}.rootfs-oci (older image-oci) are matched without
// ".rootfs". A document of another build (an IMAGE_LINK_NAME link to a
// newer SPDX than the layout pushed) is never taken: it would describe
// another image.
func Documents(dir string) []Document {
	mdir := filepath.Dir(dir)
	imageName := strings.TrimSuffix(filepath.Base(dir), "-oci")
	names := []string{imageName}
	for _, sfx := range []string{".rootfs", "-rootfs"} {
		if n, ok := strings.CutSuffix(imageName, sfx); ok && n != "" {
			names = append(names, n)
		}
	}
	var out []Document
	for _, ds := range DocKinds {
		for _, n := range names {
			p := filepath.Join(mdir, n+ds.Suffix)
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue
			}
			out = append(out, Document{Kind: ds.Kind, Path: p, Real: real})
			break
		}
	}
	return out
}

// MaxDocumentBytes bounds a build document read into memory (push) or
// fetched (sbom): oe-core's SPDX 3.0 document of a large image is tens of
// MiB.
const MaxDocumentBytes = 256 << 20

// ReadDocument reads d for attaching: only a regular file whose path,
// symbolic links resolved, stays inside the directory the document was
// found in (IMAGE_LINK_NAME links there work; a link to /proc, /sys, /dev
// or anywhere else is refused), at most MaxDocumentBytes, and only when
// its content is what its kind says (CheckContent). Anyone who can write
// the deploy directory must not be able to publish other files of the
// build host through push.
func ReadDocument(d Document) ([]byte, error) {
	data, err := safefile.ReadRegularIn(filepath.Dir(d.Path), filepath.Base(d.Path), MaxDocumentBytes)
	if err != nil {
		return nil, err
	}
	if err := CheckContent(d.Kind, data); err != nil {
		return nil, fmt.Errorf("%s: %w: refused", d.Path, err)
	}
	return data, nil
}

// CheckContent checks that data is what a document of kind holds: an SPDX
// document (application/spdx+json) is one JSON object; the package list
// (text/plain) is UTF-8 text without NUL or other control bytes but tab,
// newline and carriage return. The errors never quote data.
func CheckContent(kind string, data []byte) error {
	k, ok := KindOf(kind)
	if !ok {
		return fmt.Errorf("unknown document kind %q", kind)
	}
	switch k.MediaType {
	case "application/spdx+json":
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
			return errors.New("not JSON (an SPDX document is one JSON object)")
		}
	case "text/plain":
		if !utf8.Valid(data) {
			return errors.New("not text (invalid UTF-8)")
		}
		for _, c := range data {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return fmt.Errorf("not text (control byte 0x%02x)", c)
			}
		}
	}
	return nil
}
