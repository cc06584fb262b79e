package labels

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// A sparse entry in an archive to label is refused before anything is
// written: its data would expand far beyond the archive (a 20 KB archive
// declaring 1 GiB was extracted in full). The archive stays as it was and
// no temporary directory is left beside it.
func TestApplyArchiveRefusesSparse(t *testing.T) {
	gnuTar := testtool.Need(t, "tar") // GNU tar writes the sparse archive
	dir, _ := newLayout(t)
	hole := filepath.Join(dir, "blobs", "sha256", "hole")
	if err := os.WriteFile(hole, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(hole, 1<<30); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "base-oci.tar")
	if out, err := exec.Command(gnuTar, "--sparse", "--format=pax", "-C", dir, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	before, _ := os.ReadFile(archive)
	_, err := Apply(archive, want)
	if err == nil || !strings.Contains(err.Error(), "is a sparse file of 1073741824 bytes") {
		t.Fatalf("labelling a sparse archive: %v", err)
	}
	if after, _ := os.ReadFile(archive); string(after) != string(before) {
		t.Errorf("the archive changed")
	}
	if ents, _ := os.ReadDir(filepath.Dir(archive)); len(ents) != 1 {
		t.Errorf("left beside the archive: %v", ents)
	}
}
