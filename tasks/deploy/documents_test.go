package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// The documents of the chosen build come with it: the newest stamp's (not
// the older build's), found by IMAGE_NAME; a document of another build
// behind an IMAGE_LINK_NAME link is not taken; older image-oci naming
// (${IMAGE_NAME}.rootfs-oci) matches without ".rootfs".
func TestDocuments(t *testing.T) {
	root := t.TempDir()
	old := sample.Build{Spec: sample.Spec{Name: "base", Machine: "m1", Arch: "x86_64", Stamp: "20260101000000"}}
	cur := sample.Build{Spec: sample.Spec{Name: "base", Machine: "m1", Arch: "x86_64", Stamp: "20260102000000"}, Latest: true}
	bare := sample.Build{Spec: sample.Spec{Name: "bare", Machine: "m1", Arch: "x86_64", Stamp: "20260102000000"}, NoDocuments: true}
	if _, err := sample.WriteTree(root, []sample.Build{old, cur, bare}); err != nil {
		t.Fatal(err)
	}
	// A link named like bare's IMAGE_LINK_NAME SPDX pointing at base's.
	if err := os.Symlink(cur.ImageName()+".spdx.json", filepath.Join(root, "m1", bare.LinkName()+".spdx.json")); err != nil {
		t.Fatal(err)
	}
	res, err := deploy.Discover(context.Background(), root, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]deploy.Document{}
	for _, s := range res.Sources {
		got[s.Name] = s.Documents
	}
	if len(got["bare"]) != 0 {
		t.Errorf("bare: %v, want no documents", got["bare"])
	}
	docs := got["base"]
	want := []struct{ kind, suffix string }{{deploy.DocSBOM, ".spdx.json"}, {deploy.DocCVECheck, ".sbom-cve-check.spdx.json"}, {deploy.DocManifest, ".manifest"}}
	if len(docs) != len(want) {
		t.Fatalf("base: %v", docs)
	}
	for i, w := range want {
		if docs[i].Kind != w.kind || filepath.Base(docs[i].Path) != cur.ImageName()+w.suffix {
			t.Errorf("base document %d: %+v, want %s%s", i, docs[i], cur.ImageName(), w.suffix)
		}
	}

	// ${IMAGE_NAME}.rootfs-oci beside ${IMAGE_NAME}.spdx.json.
	dir := filepath.Join(t.TempDir(), "m2")
	if err := os.MkdirAll(filepath.Join(dir, "img-m2-20260103000000.rootfs-oci"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "img-m2-20260103000000.spdx.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := deploy.Documents(filepath.Join(dir, "img-m2-20260103000000.rootfs-oci")); len(d) != 1 || d[0].Kind != deploy.DocSBOM {
		t.Errorf("older naming: %v", d)
	}
}

// Every document kind is attached by a word CONTAINER_REGISTRY_ATTACH
// accepts, and every word attaches something.
func TestDocKindSettings(t *testing.T) {
	used := map[string]bool{}
	for _, k := range deploy.DocKinds {
		if !slices.Contains(config.AttachKinds, k.Setting) {
			t.Errorf("%s: setting word %q is not in config.AttachKinds %v", k.Kind, k.Setting, config.AttachKinds)
		}
		used[k.Setting] = true
	}
	for _, w := range config.AttachKinds {
		if !used[w] {
			t.Errorf("CONTAINER_REGISTRY_ATTACH word %q attaches no document", w)
		}
	}
}
