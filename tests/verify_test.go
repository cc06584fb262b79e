package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobFile is where the filesystem storage keeps a blob.
func blobFile(e *Env, hex string) string {
	return filepath.Join(e.Storage, "data", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// verify is clean on intact content, counts what gc would free after a
// tag is deleted, and reports a corrupted or missing blob with exit 1.
func TestVerify(t *testing.T) {
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	keep := srvRandomImage(t, 4096, 2)
	drop := srvRandomImage(t, 8192, 1)
	srvPush(t, e, "yocto/keep:1", keep)
	srvPush(t, e, "yocto/drop:1", drop)

	r := e.mustRun(t, 0, "verify")
	wantOut(t, r, "clean verify", "2 repositories, 2 tags", "no unreferenced blobs", "OK: no problems found")

	// A blob uploaded without a manifest (an interrupted push) is an
	// orphan, not a problem.
	orphan := static.NewLayer([]byte("orphan layer"), types.OCILayer)
	repo, err := name.NewRepository(e.URL+"/yocto/drop", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(repo, orphan); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(t, 0, "verify")
	wantOut(t, r, "verify with an orphan", "1 unreferenced blobs, 12 bytes", "OK: no problems found")

	layers, err := keep.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := layers[0].Digest()
	path := blobFile(e, d.Hex)
	if err := os.WriteFile(path, []byte("corrupted"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(t, 1, "verify")
	wantOut(t, r, "corrupt blob", "yocto/keep:1", d.String(), "content hashes to")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(t, 1, "verify")
	wantOut(t, r, "missing blob", "yocto/keep:1", d.String())

	r = e.Run("verify", "--json")
	if r.Code != 1 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "{") || !strings.Contains(r.Stdout, `"problems"`) {
		t.Errorf("verify --json: exit %d\n%s", r.Code, r.Out())
	}
}
