package sample

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SPDXContext is the JSON-LD context of SPDX 3.0.1 documents, as oe-core's
// create-spdx-3.0 writes them.
const SPDXContext = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"

// pkg is one package of a sample image.
type pkg struct{ name, arch, version string }

// packages lists the packages of b's image: the same for every build but
// the architecture, and a build-info package carrying the stamp.
func (b Build) packages() []pkg {
	arch := strings.ReplaceAll(b.Arch, "-", "_")
	return []pkg{
		{"base-files", b.Machine, "3.0.14"},
		{"busybox", arch, "1.36.1"},
		{"libc6", arch, "2.40+git0+" + b.Stamp[:8]},
	}
}

// ImageName is the build's IMAGE_NAME (<name>-<machine>.rootfs-<stamp>)
// and LinkName its IMAGE_LINK_NAME (without the stamp), as oe-core names
// them.
func (b Build) ImageName() string { return fmt.Sprintf("%s-%s.rootfs-%s", b.Name, b.Machine, b.Stamp) }

// LinkName is the build's IMAGE_LINK_NAME.
func (b Build) LinkName() string { return fmt.Sprintf("%s-%s.rootfs", b.Name, b.Machine) }

// SPDX returns a small SPDX 3.0.1 JSON-LD document of b's image: a
// CreationInfo, the tool agent, one software_Package per package, the
// contains relationships, an Sbom and the SpdxDocument around them. With
// cve set it adds one vulnerability and its relationship, as the
// sbom-cve-check export carries.
func (b Build) SPDX(cve bool) ([]byte, error) {
	created, err := time.Parse("20060102150405", b.Stamp)
	if err != nil {
		return nil, fmt.Errorf("stamp %q: %w", b.Stamp, err)
	}
	ns := "http://spdx.org/spdxdocs/" + b.ImageName()
	ci := "_:CreationInfo1"
	obj := func(typ, id string, kv ...any) map[string]any {
		m := map[string]any{"type": typ, "spdxId": ns + "/" + id, "creationInfo": ci}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	graph := []any{
		map[string]any{"type": "CreationInfo", "@id": ci, "specVersion": "3.0.1",
			"created": created.UTC().Format(time.RFC3339), "createdBy": []string{ns + "/agent/openembedded"}},
		obj("Organization", "agent/openembedded", "name", "OpenEmbedded"),
	}
	image := obj("software_Package", "image", "name", b.ImageName(), "software_primaryPurpose", "container")
	graph = append(graph, image)
	var elements []string
	var contained []string
	for _, p := range b.packages() {
		id := "package/" + p.name
		graph = append(graph, obj("software_Package", id, "name", p.name, "software_packageVersion", p.version))
		contained = append(contained, ns+"/"+id)
	}
	graph = append(graph, obj("Relationship", "relationship/contains", "relationshipType", "contains",
		"from", ns+"/image", "to", contained))
	if cve {
		graph = append(graph, obj("security_Vulnerability", "vulnerability/CVE-2024-58251", "name", "CVE-2024-58251"),
			obj("Relationship", "relationship/affects", "relationshipType", "hasAssociatedVulnerability",
				"from", ns+"/package/busybox", "to", []string{ns + "/vulnerability/CVE-2024-58251"}))
	}
	for _, g := range graph[1:] {
		elements = append(elements, g.(map[string]any)["spdxId"].(string))
	}
	graph = append(graph, obj("software_Sbom", "sbom", "rootElement", []string{ns + "/image"},
		"element", elements, "software_sbomType", []string{"build"}))
	graph = append(graph, obj("SpdxDocument", "document", "name", b.ImageName(),
		"rootElement", []string{ns + "/sbom"}, "element", append(elements, ns+"/sbom"),
		"profileConformance", []string{"core", "software", "simpleLicensing"}))
	return json.MarshalIndent(map[string]any{"@context": SPDXContext, "@graph": graph}, "", "  ")
}

// PackageList is b's image manifest as write_image_manifest writes it:
// "name arch version" lines, sorted.
func (b Build) PackageList() []byte {
	var sb strings.Builder
	for _, p := range b.packages() {
		fmt.Fprintf(&sb, "%s %s %s\n", p.name, p.arch, p.version)
	}
	return []byte(sb.String())
}

// writeDocuments writes b's SPDX, CVE-check SPDX and package list beside
// its layout in mdir, and their IMAGE_LINK_NAME links when b is the latest
// build.
func writeDocuments(mdir string, b Build) error {
	sbom, err := b.SPDX(false)
	if err != nil {
		return err
	}
	cve, err := b.SPDX(true)
	if err != nil {
		return err
	}
	docs := []struct {
		suffix string
		data   []byte
	}{{".spdx.json", sbom}, {".sbom-cve-check.spdx.json", cve}, {".manifest", b.PackageList()}}
	for _, d := range docs {
		name := b.ImageName() + d.suffix
		if err := os.WriteFile(filepath.Join(mdir, name), d.data, 0o644); err != nil {
			return err
		}
		if b.Latest {
			link := filepath.Join(mdir, b.LinkName()+d.suffix)
			_ = os.Remove(link)
			if err := os.Symlink(name, link); err != nil {
				return err
			}
		}
	}
	return nil
}
