package tests

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// fileSum is the sha256 of a file.
func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// rebuild tags repo:to at addr as repo:from with one more small layer on
// every platform: a rebuilt image sharing its base layers.
func rebuild(t *testing.T, addr, repo, from, to string) {
	t.Helper()
	r, err := name.NewRepository(addr+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r.Tag(from))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		l, err := random.Layer(4096, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}})
	}
	if err := remote.WriteIndex(r.Tag(to), mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)); err != nil {
		t.Fatal(err)
	}
}

// Export of two multi-arch images with their documents and a signature
// tag: the same bytes on two runs; skopeo reads the archive; import
// restores images, referrers and the signature tag into an empty
// registry (verify clean, sbom fetches); a differential bundle of a
// rebuilt image is smaller, imports on top of the first and is refused,
// naming the missing blobs, where the first is absent.
func TestExportBundle(t *testing.T) {
	e, sig := transferSource(t)
	dir := t.TempDir()
	b1, b1again := filepath.Join(dir, "release-1.tar"), filepath.Join(dir, "release-1-again.tar")
	r := e.mustRun(t, 0, "export", "container-base:v1", "app-server:v1", "--output", b1)
	t.Logf("export:\n%s", r.Stdout)
	e.mustRun(t, 0, "export", "container-base:v1", "app-server:v1", "--output", b1again)
	s1, s2 := fileSum(t, b1), fileSum(t, b1again)
	t.Logf("sha256 of two exports: %s, %s", s1, s2)
	if s1 != s2 {
		t.Fatalf("two exports of the same content differ: %s vs %s", s1, s2)
	}
	wantOut(t, r, "export", "Exported 2 image(s)", "sha256: "+s1, "yocto/container-base: "+sig+", v1; 10 manifest(s), 6 referrer(s)")

	// skopeo, an independent reader, by ref name.
	skopeo(t, "copy", "--all", "oci-archive:"+b1+":container-base:v1", "oci:"+filepath.Join(t.TempDir(), "out")+":x")

	dst := NewEnv(t, nil)
	dst.mustRun(t, 0, "start")
	r = dst.mustRun(t, 0, "import", "oci-archive:"+b1)
	t.Logf("import:\n%s", r.Stdout)
	wantOut(t, r, "import bundle", "Imported bundle", "(full)", ":"+sig)
	dst.mustRun(t, 0, "verify")
	want := e.mustRun(t, 0, "sbom", "container-base:v1", "--platform", "linux/arm64").Stdout
	if got := dst.mustRun(t, 0, "sbom", "container-base:v1", "--platform", "linux/arm64").Stdout; got != want || got == "" {
		t.Errorf("sbom after import differs from the source's")
	}
	checkReferrers(t, dst.URL, "yocto/app-server", "v1", true)
	if tags := skopeo(t, "list-tags", "--tls-verify=false", "docker://"+dst.URL+"/yocto/container-base"); !strings.Contains(tags, sig) {
		t.Errorf("the signature tag did not come back: %s", tags)
	}

	// A rebuilt container-base: the differential bundle leaves out what
	// release-1 holds.
	rebuild(t, e.URL, "yocto/container-base", "v1", "v2")
	diff, full := filepath.Join(dir, "update-2.tar"), filepath.Join(dir, "full-2.tar")
	r = e.mustRun(t, 0, "export", "container-base:v2", "app-server:v1", "--since", b1, "--output", diff)
	t.Logf("differential export:\n%s", r.Stdout)
	wantOut(t, r, "differential export", "differential bundle (since", "left out (in the earlier bundle)")
	e.mustRun(t, 0, "export", "container-base:v2", "app-server:v1", "--output", full)
	t.Logf("full bundle %d bytes, differential %d bytes", fileSize(t, full), fileSize(t, diff))
	// Smaller by the unchanged blobs: every byte of them, at least.
	fullFiles, diffFiles := tarFiles(t, full), tarFiles(t, diff)
	var unchanged int64
	for n, f := range fullFiles {
		if _, ok := diffFiles[n]; !ok {
			unchanged += f.size
		}
	}
	if unchanged == 0 || fileSize(t, full)-fileSize(t, diff) < unchanged {
		t.Errorf("differential bundle is %d bytes, the full one %d; unchanged blobs %d bytes", fileSize(t, diff), fileSize(t, full), unchanged)
	}
	fresh := NewEnv(t, nil)
	fresh.mustRun(t, 0, "start")
	r = fresh.Run("import", "oci-archive:"+diff)
	if r.Code != 1 || !strings.Contains(r.Stdout, "is differential and the registry lacks") || !strings.Contains(r.Stdout, "yocto/container-base sha256:") {
		t.Errorf("differential import without its base: exit %d\n%s", r.Code, r.Out())
	}
	if r := fresh.Run("tags", "container-base"); r.Code == 0 {
		t.Errorf("a refused import left tags: %s", r.Stdout)
	}
	r = dst.mustRun(t, 0, "import", "oci-archive:"+diff)
	wantOut(t, r, "differential import", "(differential)", ":v2")
	dst.mustRun(t, 0, "verify")
	_, plats := rawIndex(t, dst.URL+"/yocto/container-base:v2")
	if len(plats) != 2 {
		t.Errorf("container-base:v2 after the differential import: %v", plats)
	}
	skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+dst.URL+"/yocto/container-base:v2", "oci:"+filepath.Join(t.TempDir(), "v2")+":x")
}

// tarFile is one regular file of a tar: where its data starts, its size.
type tarFile struct{ off, size int64 }

// tarFiles lists the regular files of a tar archive.
func tarFiles(t *testing.T, file string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]tarFile{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			pos, _ := f.Seek(0, io.SeekCurrent)
			out[h.Name] = tarFile{off: pos, size: h.Size}
		}
	}
}

// A tampered or truncated bundle is refused, naming what is wrong; a
// bundle that does not fit on the disk leaves no file behind.
func TestExportBadInput(t *testing.T) {
	e, _ := transferSource(t)
	dir := t.TempDir()
	b := filepath.Join(dir, "b.tar")
	e.mustRun(t, 0, "export", "container-base:v1", "--output", b)
	raw, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	dst := NewEnv(t, nil)
	dst.mustRun(t, 0, "start")

	var off, size int64
	for _, f := range tarFiles(t, b) {
		if f.size > size {
			off, size = f.off, f.size
		}
	}
	tampered := bytes.Clone(raw)
	tampered[off+size/2] ^= 0xff
	bad := filepath.Join(dir, "tampered.tar")
	os.WriteFile(bad, tampered, 0o644)
	r := dst.Run("import", "oci-archive:"+bad)
	t.Logf("tampered:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "does not match its digest") {
		t.Errorf("tampered bundle: exit %d\n%s", r.Code, r.Out())
	}
	cut := filepath.Join(dir, "truncated.tar")
	os.WriteFile(cut, raw[:off+size/2], 0o644)
	r = dst.Run("import", "oci-archive:"+cut)
	t.Logf("truncated:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "truncated") {
		t.Errorf("truncated bundle: exit %d\n%s", r.Code, r.Out())
	}
	if r := dst.Run("tags", "container-base"); r.Code == 0 && strings.Contains(r.Stdout, "v1") {
		t.Errorf("a refused bundle left a tag: %s", r.Stdout)
	}

	// Disk full: a tmpfs smaller than the bundle.
	testtool.NeedRoot(t, "mounting a tmpfs")
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	r = e.Run("export", "container-base:v1", "--output", filepath.Join(small, "b.tar"))
	t.Logf("disk full:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "no space left on device") {
		t.Errorf("disk full: exit %d\n%s", r.Code, r.Out())
	}
	if left, _ := os.ReadDir(small); len(left) != 0 {
		t.Errorf("disk full left %v", left)
	}
	r = e.Run("export", "container-base:v1", "--output", dir)
	if r.Code != 1 || !strings.Contains(r.Stdout, "not a regular file") {
		t.Errorf("--output a directory: exit %d\n%s", r.Code, r.Out())
	}
}

// Exporting a 1 GiB image keeps the tool's peak RSS under 100 MiB: blobs
// are streamed from the registry into the archive.
func TestExportMemoryFlat(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	bigBuild(t, root, "big", "qemux86-64", "x86_64", "20260108123456", 256<<20, 4)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "big", "--tag", "v1")
	out := filepath.Join(t.TempDir(), "big.tar")
	cmd := exec.Command(e.Script, "export", "big:v1", "--output", out)
	cmd.Env = baseEnv()
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// VmHWM of the process (the script execs the tool: same pid), read
	// until it exits.
	var rss int64
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("export: %v\n%s", err, output.String())
			}
			waiting = false
		case <-time.After(20 * time.Millisecond):
			b, _ := os.ReadFile(status)
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
					rss, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
		}
	}
	t.Logf("export of %d bytes: peak RSS %d KiB", fileSize(t, out), rss)
	if fileSize(t, out) < 1<<30 {
		t.Fatalf("bundle is %d bytes, want over 1 GiB", fileSize(t, out))
	}
	if rss >= 100<<10 {
		t.Errorf("peak RSS %d KiB, want under 100 MiB", rss)
	}
}
