package tests

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// srvPush writes img to the insecure registry of e as repo:tag.
func srvPush(t *testing.T, e *Env, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(e.URL+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func srvRandomImage(t *testing.T, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// skopeoInspect runs skopeo as an independent client: it must find ref.
func skopeoInspect(t *testing.T, e *Env, ref string) (string, error) {
	t.Helper()
	testtool.Need(t, "skopeo")
	out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+e.URL+"/"+ref).CombinedOutput()
	return string(out), err
}

// skopeoPull copies ref completely (every blob) into a scratch OCI layout.
func skopeoPull(t *testing.T, e *Env, ref string) error {
	t.Helper()
	testtool.Need(t, "skopeo")
	dir := filepath.Join(t.TempDir(), "oci")
	out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+e.URL+"/"+ref, "oci:"+dir+":x").CombinedOutput()
	if err != nil {
		t.Logf("skopeo copy %s: %s", ref, out)
	}
	return err
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Query commands, delete of one tag among two on the same manifest, and
// the "not responding" answers when the registry is down.
func TestQueryAndDelete(t *testing.T) {
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	img := srvRandomImage(t, 1024, 2)
	dgst := srvPush(t, e, "yocto/app:one", img)
	srvPush(t, e, "yocto/app:two", img)
	srvPush(t, e, "yocto/other:latest", srvRandomImage(t, 512, 1))

	r := e.mustRun(t, 0, "list")
	wantOut(t, r, "list", "yocto/app: one two", "yocto/other: latest")
	r = e.mustRun(t, 0, "list", "--json")
	var repos []struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &repos); err != nil || len(repos) != 2 {
		t.Fatalf("list --json: %v\n%s", err, r.Stdout)
	}
	r = e.mustRun(t, 0, "catalog")
	var cat struct{ Repositories []string }
	if err := json.Unmarshal([]byte(r.Stdout), &cat); err != nil || strings.Join(cat.Repositories, ",") != "yocto/app,yocto/other" {
		t.Fatalf("catalog: %v\n%s", err, r.Stdout)
	}
	r = e.mustRun(t, 0, "tags", "app")
	wantOut(t, r, "tags", "Tags for yocto/app:", "  one", "  two")
	r = e.mustRun(t, 0, "tags", "yocto/app", "--json")
	if strings.TrimSpace(r.Stdout) != "{\n  \"name\": \"yocto/app\",\n  \"tags\": [\n    \"one\",\n    \"two\"\n  ]\n}" {
		t.Errorf("tags --json:\n%s", r.Stdout)
	}
	r = e.Run("tags", "nosuch")
	if r.Code == 0 || !strings.Contains(r.Stdout, "Image not found") {
		t.Errorf("tags of an unknown image: exit %d\n%s", r.Code, r.Out())
	}
	r = e.mustRun(t, 0, "info", "--json")
	var info map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil || info["url"] != "http://"+e.URL {
		t.Errorf("info --json: %v\n%s", err, r.Stdout)
	}
	if _, ok := info["password_file"]; ok {
		t.Errorf("info shows a password file without auth:\n%s", r.Stdout)
	}

	// delete
	r = e.Run("delete", "app")
	if r.Code == 0 || !strings.Contains(r.Stdout, "Tag required") || !strings.Contains(r.Stdout, "Usage:") {
		t.Errorf("delete without tag: exit %d\n%s", r.Code, r.Out())
	}
	r = e.Run("delete")
	if r.Code == 0 || !strings.Contains(r.Stdout, "Usage:") {
		t.Errorf("delete without argument: exit %d\n%s", r.Code, r.Out())
	}
	r = e.Run("delete", "app:nosuch")
	if r.Code == 0 || !strings.Contains(r.Stdout, "not found") {
		t.Errorf("delete of an unknown tag: exit %d\n%s", r.Code, r.Out())
	}
	r = e.mustRun(t, 0, "delete", "app:one")
	wantOut(t, r, "delete", "Deleted successfully", "gc")
	if strings.Contains(r.Stdout, "removed manifest") {
		t.Errorf("delete removed a manifest another tag still uses:\n%s", r.Stdout)
	}
	if out, err := skopeoInspect(t, e, "yocto/app:two"); err != nil {
		t.Fatalf("the other tag of the same manifest is gone: %v\n%s", err, out)
	}
	if err := skopeoPull(t, e, "yocto/app:two"); err != nil {
		t.Fatalf("pulling the other tag: %v", err)
	}
	if out, err := skopeoInspect(t, e, "yocto/app:one"); err == nil {
		t.Fatalf("deleted tag still answers:\n%s", out)
	}
	if out, err := skopeoInspect(t, e, "yocto/app@"+dgst.String()); err != nil {
		t.Fatalf("manifest deleted by digest: %v\n%s", err, out)
	}
	r = e.mustRun(t, 0, "tags", "app")
	if strings.Contains(r.Stdout, "  one") || !strings.Contains(r.Stdout, "  two") {
		t.Errorf("tags after delete:\n%s", r.Stdout)
	}

	// Registry down: every command that needs it says so.
	e.mustRun(t, 0, "stop")
	for _, args := range [][]string{{"list"}, {"catalog"}, {"tags", "app"}, {"delete", "app:two"}} {
		r := e.Run(args...)
		if r.Code == 0 || !strings.Contains(r.Stdout, "Registry not responding at http://"+e.URL) || !strings.Contains(r.Stdout, "Start it first: "+e.Script+" start") {
			t.Errorf("%v while stopped: exit %d\n%s", args, r.Code, r.Out())
		}
	}
	e.mustRun(t, 0, "info")
}

// gc: dry run without a terminal removes nothing; --yes frees the bytes of
// a deleted tag, keeps the registry running and the rest pullable.
func TestGC(t *testing.T) {
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	srvPush(t, e, "yocto/keep:v1", srvRandomImage(t, 64*1024, 2))
	srvPush(t, e, "yocto/keep:v2", srvRandomImage(t, 64*1024, 1))
	srvPush(t, e, "yocto/gone:v1", srvRandomImage(t, 1<<20, 3))
	data := filepath.Join(e.Storage, "data")
	e.mustRun(t, 0, "delete", "gone:v1")
	before := dirSize(t, data)

	r := e.mustRun(t, 0, "gc")
	wantOut(t, r, "gc dry run", "Would remove 5 blob(s)", "nothing was removed", "gc --yes")
	if got := dirSize(t, data); got != before {
		t.Errorf("dry run changed the storage: %d -> %d bytes", before, got)
	}
	pid := e.pidOf(t)
	r = e.mustRun(t, 0, "gc", "--yes")
	wantOut(t, r, "gc --yes", "Garbage collection complete", "removed 5 blob(s)", "Pushes wait while the collection sweeps (pulls go on)", "Pushes resume")
	after := dirSize(t, data)
	if before-after < 3<<20 {
		t.Errorf("gc freed %d bytes, want at least %d", before-after, 3<<20)
	}
	t.Logf("gc freed %d bytes\n%s", before-after, r.Stdout)
	e.mustRun(t, 0, "status")
	if e.pidOf(t) != pid {
		t.Errorf("the registry was restarted around the sweep (pid %d, was %d); gc is online", e.pidOf(t), pid)
	}
	for _, ref := range []string{"yocto/keep:v1", "yocto/keep:v2"} {
		if err := skopeoPull(t, e, ref); err != nil {
			t.Errorf("%s after gc: %v", ref, err)
		}
	}
	r = e.mustRun(t, 0, "gc", "--yes", "--delete-untagged")
	wantOut(t, r, "second gc", "Nothing to collect")

	// gc while stopped leaves it stopped.
	e.mustRun(t, 0, "stop")
	e.mustRun(t, 0, "gc", "--yes")
	e.mustRun(t, 1, "status")
}

// Two registries on two ports with two storages, one generated helper:
// the environment overrides storage and URL.
func TestTwoRegistries(t *testing.T) {
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	other := filepath.Join(t.TempDir(), "second")
	port2 := FreePort(t)
	env2 := map[string]string{"CONTAINER_REGISTRY_STORAGE": other, "CONTAINER_REGISTRY_URL": "localhost:" + port2}
	r := e.RunEnv(env2, "start")
	if r.Code != 0 {
		t.Fatalf("second registry: %d\n%s", r.Code, r.Out())
	}
	t.Cleanup(func() { e.RunEnv(env2, "stop") })
	wantOut(t, r, "second start", "http://localhost:"+port2, other)
	if _, err := os.Stat(filepath.Join(other, "registry-config.yml")); err != nil {
		t.Errorf("no config rendered into the overridden storage: %v", err)
	}
	e2 := &Env{t: t, Storage: other, Port: port2, URL: "localhost:" + port2, Script: e.Script}
	srvPush(t, e, "yocto/first:v1", srvRandomImage(t, 256, 1))
	srvPush(t, e2, "yocto/second:v1", srvRandomImage(t, 256, 1))

	r = e.mustRun(t, 0, "list")
	if !strings.Contains(r.Stdout, "yocto/first") || strings.Contains(r.Stdout, "yocto/second") {
		t.Errorf("first registry list:\n%s", r.Stdout)
	}
	r = e.RunEnv(env2, "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, "yocto/second") || strings.Contains(r.Stdout, "yocto/first") {
		t.Errorf("second registry list: %d\n%s", r.Code, r.Stdout)
	}
	if r := e.RunEnv(env2, "status"); r.Code != 0 || !strings.Contains(r.Stdout, "healthy") {
		t.Errorf("second status: %d\n%s", r.Code, r.Stdout)
	}
	if r := e.RunEnv(env2, "stop"); r.Code != 0 {
		t.Errorf("second stop: %d\n%s", r.Code, r.Out())
	}
	e.mustRun(t, 0, "status")
	if _, err := os.Stat(filepath.Join(other, "data")); err != nil {
		t.Errorf("second registry did not store in its storage: %v", err)
	}
}
