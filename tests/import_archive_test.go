package tests

import (
	"path/filepath"
	"testing"
)

// An oci-archive is imported in place: nothing is extracted, so the
// import works with TMPDIR pointing nowhere (it used to extract the
// archive there, and a 20 KB sparse archive wrote 3 GB), and the image
// pulls complete with the archive's manifest.
func TestImportArchiveInPlace(t *testing.T) {
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	dir, _ := goodLayout(t)
	archive := filepath.Join(t.TempDir(), "badimg-oci.tar")
	tarDir(t, dir, archive)
	r := e.RunEnv(map[string]string{"TMPDIR": filepath.Join(t.TempDir(), "does-not-exist")}, "import", "oci-archive:"+archive, "inplace")
	if r.Code != 0 {
		t.Fatalf("import with TMPDIR pointing nowhere: exit %d\n%s", r.Code, r.Out())
	}
	if err := skopeoPull(t, e, "yocto/inplace:latest"); err != nil {
		t.Fatal(err)
	}
	if got, want := e.snapshot(t)["yocto/inplace:latest"], layoutManifest(t, dir); got != want {
		t.Fatalf("yocto/inplace:latest is %s, want the archive's manifest %s", got, want)
	}
}
