package tests

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// Fault tests: the server or the tool is SIGKILLed at chosen points, two
// pushes race for one tag, the storage fills up or turns read-only. After
// each fault the registry must recover with `start`, `verify` must be clean
// and what was tagged before must still pull.

// bigBuild writes one build of image name for machine/arch below root
// (a DEPLOY_DIR_IMAGES) whose layers are n blobs of size bytes of random,
// incompressible data, with its -latest-oci link. It returns the layout.
func bigBuild(t *testing.T, root, image, machine, arch, stamp string, size int64, n int) string {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i := 0; i < n; i++ {
		l, err := random.Layer(size, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	b := sample.Build{Spec: sample.Spec{Name: image, Machine: machine, Arch: arch, Stamp: stamp}}
	dir := filepath.Join(root, machine, b.DirName())
	if err := sample.WriteLayout(dir, img, "latest"); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, machine, image+"-latest-oci")
	os.Remove(link)
	if err := os.Symlink(b.DirName(), link); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bg is a helper-script command running in the background.
type bg struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	done   chan struct{}
	code   int
	waited bool
}

// Start runs the script with args in the background (environment as Run).
func (e *Env) Start(t *testing.T, env map[string]string, args ...string) *bg {
	t.Helper()
	b := &bg{cmd: exec.Command(e.Script, args...), done: make(chan struct{})}
	b.cmd.Env = baseEnv()
	for _, m := range []map[string]string{e.Extra, env} {
		for k, v := range m {
			b.cmd.Env = append(b.cmd.Env, k+"="+v)
		}
	}
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.cmd.Wait()
		b.code = b.cmd.ProcessState.ExitCode()
		close(b.done)
	}()
	t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done })
	return b
}

// running reports whether the command has not exited yet.
func (b *bg) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Wait waits for the command (at most 2 minutes) and returns its exit
// code and output.
func (b *bg) Wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(2 * time.Minute):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("%v timed out:\n%s", b.cmd.Args, b.out.String())
	}
	return b.code, b.out.String()
}

// poll calls cond every 2 ms until it is true; it fails the test after
// timeout, or as soon as the background command b (if not nil) exits.
func poll(t *testing.T, what string, timeout time.Duration, b *bg, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if b != nil && !b.running() {
			code, out := b.Wait(t)
			t.Fatalf("waiting for %s: %v exited (%d) first:\n%s", what, b.cmd.Args[1:], code, out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// killServer SIGKILLs the registry of e and waits until it is gone.
func (e *Env) killServer(t *testing.T) {
	t.Helper()
	pid := e.pidOf(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, pid)
}

// uploads lists the partial uploads the server holds in repository repo.
func uploads(e *Env, repo string) []string {
	files, _ := filepath.Glob(filepath.Join(e.Storage, "data", "docker", "registry", "v2", "repositories", repo, "_uploads", "*", "data"))
	return files
}

// uploadInFlight reports whether the server holds a partial upload with
// data in repository repo that is not one of old (left by earlier crashes).
func uploadInFlight(e *Env, repo string, old []string) bool {
	for _, f := range uploads(e, repo) {
		if slices.Contains(old, f) {
			continue
		}
		if fi, err := os.Stat(f); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// pauseAt arms the tool's test hook at point (see package testhook) and
// returns the environment and the marker file the tool creates there.
func pauseAt(t *testing.T, point string) (map[string]string, string) {
	marker := filepath.Join(t.TempDir(), "paused")
	return map[string]string{testhook.EnvVar: point + ":" + marker}, marker
}

// markerPid is the pid the paused tool wrote into marker.
func markerPid(t *testing.T, marker string) int {
	t.Helper()
	data, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("marker %s: %v", marker, err)
	}
	return pid
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// pullAll pulls every tag of snap completely with skopeo.
func pullAll(t *testing.T, e *Env, snap map[string]string) {
	t.Helper()
	refs := make([]string, 0, len(snap))
	for ref := range snap {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		if err := skopeoPull(t, e, ref); err != nil {
			t.Errorf("%s no longer pulls: %v", ref, err)
		}
	}
}

// sameTags fails unless every tag of before still names the same digest.
func sameTags(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for ref, d := range before {
		if after[ref] != d {
			t.Errorf("%s: %s was %s, now %q", what, ref, d, after[ref])
		}
	}
}

// recovered restarts the registry after a crash and checks that verify is
// clean and every tag of before still names its digest.
func (e *Env) recovered(t *testing.T, what string, before map[string]string) {
	t.Helper()
	r := e.mustRun(t, 0, "start")
	wantOut(t, r, what+": start after the crash", "Registry started")
	r = e.Run("verify")
	if r.Code != 0 {
		t.Fatalf("%s: verify after the crash: exit %d\n%s", what, r.Code, r.Out())
	}
	sameTags(t, what, before, e.snapshot(t))
}

// The server is SIGKILLed while push is uploading a layer. The push fails
// with a clear error; after start the same push completes, verify is clean
// and every tag pushed before still pulls.
func TestFaultKillServerDuringUpload(t *testing.T) {
	const rounds = 3
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	for i := 0; i < rounds; i++ {
		before := e.snapshot(t)
		root := filepath.Join(t.TempDir(), "images")
		bigBuild(t, root, "big", "qemux86-64", "x86_64", fmt.Sprintf("2026020100000%d", i), 6<<20, 3)
		env := map[string]string{"DEPLOY_DIR_IMAGES": root}
		tag := fmt.Sprintf("r%d", i)
		old := uploads(e, "yocto/big")
		p := e.Start(t, env, "push", "big", "--tag", tag)
		poll(t, "a layer upload in flight", 30*time.Second, p, func() bool { return uploadInFlight(e, "yocto/big", old) })
		e.killServer(t)
		code, out := p.Wait(t)
		if code == 0 {
			t.Fatalf("round %d: push succeeded although the server died during the upload:\n%s", i, out)
		}
		if !strings.Contains(out, "Error: big") || !strings.Contains(out, "uploading blob") {
			t.Errorf("round %d: unclear error after the crash:\n%s", i, out)
		} else if i == 0 {
			t.Logf("push when the server died during an upload:\n%s", out)
		}
		t.Logf("round %d: push after SIGKILL exited %d: %s", i, code, lastLines(out, 3))
		e.recovered(t, fmt.Sprintf("round %d", i), before)
		r := e.RunEnv(env, "push", "big", "--tag", tag)
		if r.Code != 0 {
			t.Fatalf("round %d: push again after start: exit %d\n%s", i, r.Code, r.Out())
		}
		if r := e.Run("verify"); r.Code != 0 {
			t.Fatalf("round %d: verify after the completed push: %s", i, r.Out())
		}
		pullAll(t, e, before)
		if err := skopeoPull(t, e, "yocto/big:"+tag); err != nil {
			t.Fatalf("round %d: the completed push does not pull: %v", i, err)
		}
	}
}

// The server is SIGKILLed after push put the manifests by digest and
// before it wrote any tag's index (the tool is held at that point by its
// test hook). No tag changes; after start the same push completes with
// both platforms in the index.
func TestFaultKillServerBeforeIndex(t *testing.T) {
	const rounds = 3
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	for i := 0; i < rounds; i++ {
		before := e.snapshot(t)
		root := filepath.Join(t.TempDir(), "images")
		stamp := fmt.Sprintf("2026030100000%d", i)
		x86 := bigBuild(t, root, "app", "qemux86-64", "x86_64", stamp, 64<<10, 2)
		arm := bigBuild(t, root, "app", "qemuarm64", "aarch64", stamp, 64<<10, 2)
		env, marker := pauseAt(t, "push-before-index")
		env["DEPLOY_DIR_IMAGES"] = root
		// Each round also moves "latest" of app, which exists from the
		// base push: it must keep its old digest through the crash.
		p := e.Start(t, env, "push", "app", "--tag", fmt.Sprintf("r%d", i), "--tag", "latest")
		poll(t, "push to reach the index writes", 30*time.Second, p, func() bool { return exists(marker) })
		for _, dir := range []string{x86, arm} {
			if _, err := skopeoInspect(t, e, "yocto/app@"+layoutManifest(t, dir)); err != nil {
				t.Fatalf("round %d: manifest not in the registry at the pause point: %v", i, err)
			}
		}
		e.killServer(t)
		os.Remove(marker) // let the push go on against the dead server
		code, out := p.Wait(t)
		if code == 0 || !strings.Contains(out, "Error: app") {
			t.Fatalf("round %d: push after the crash: exit %d\n%s", i, code, out)
		}
		t.Logf("round %d: push after SIGKILL exited %d: %s", i, code, lastLines(out, 3))
		e.recovered(t, fmt.Sprintf("round %d", i), before)
		if got := e.snapshot(t); len(got) != len(before) {
			t.Errorf("round %d: tags changed by the interrupted push: %v -> %v", i, before, got)
		}
		r := e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": root}, "push", "app", "--tag", fmt.Sprintf("r%d", i), "--tag", "latest")
		if r.Code != 0 {
			t.Fatalf("round %d: push again: %s", i, r.Out())
		}
		for _, tag := range []string{fmt.Sprintf("r%d", i), "latest"} {
			_, plats := rawIndex(t, e.URL+"/yocto/app:"+tag)
			if plats["linux/amd64"] != layoutManifest(t, x86) || plats["linux/arm64"] != layoutManifest(t, arm) {
				t.Fatalf("round %d: %s holds %v", i, tag, plats)
			}
		}
		if r := e.Run("verify"); r.Code != 0 {
			t.Fatalf("round %d: verify after the completed push: %s", i, r.Out())
		}
		delete(before, "yocto/app:latest") // moved on purpose
		pullAll(t, e, before)
	}
}

// Two processes push different architectures of one image to the same
// tags at the same time, 20 rounds: every index ends with both platforms.
func TestFaultConcurrentArchPushes(t *testing.T) {
	const rounds = 20
	x86root := filepath.Join(t.TempDir(), "x86")
	armroot := filepath.Join(t.TempDir(), "arm")
	x86 := bigBuild(t, x86root, "app", "qemux86-64", "x86_64", "20260401000000", 32<<10, 2)
	arm := bigBuild(t, armroot, "app", "qemuarm64", "aarch64", "20260401000000", 32<<10, 2)
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	want := map[string]string{"linux/amd64": layoutManifest(t, x86), "linux/arm64": layoutManifest(t, arm)}
	remerged := 0
	for i := 0; i < rounds; i++ {
		tag := fmt.Sprintf("c%d", i)
		a := e.Start(t, map[string]string{"DEPLOY_DIR_IMAGES": x86root}, "push", "app", "--tag", tag, "--tag", "latest")
		b := e.Start(t, map[string]string{"DEPLOY_DIR_IMAGES": armroot}, "push", "app", "--tag", tag, "--tag", "latest")
		for _, p := range []*bg{a, b} {
			code, out := p.Wait(t)
			if code != 0 {
				t.Fatalf("round %d: push exit %d\n%s", i, code, out)
			}
			remerged += strings.Count(out, "changed under a concurrent push")
		}
		for _, tg := range []string{tag, "latest"} {
			plats := e.platforms(t, "yocto/app:"+tg)
			if len(plats) != 2 || plats["linux/amd64"] != want["linux/amd64"] || plats["linux/arm64"] != want["linux/arm64"] {
				t.Fatalf("round %d: %s holds %v, want %v", i, tg, plats, want)
			}
		}
	}
	t.Logf("%d rounds, both platforms every time; %d re-merge(s) after a concurrent replace", rounds, remerged)
	if r := e.Run("verify"); r.Code != 0 {
		t.Fatalf("verify: %s", r.Out())
	}
}

// gc --yes is SIGKILLed in the middle of its sweep (held by its test hook
// after the k-th removal). The rerun completes; no referenced blob is
// lost, verify is clean and every kept image pulls.
func TestFaultKillGC(t *testing.T) {
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	keep := e.snapshot(t)
	for i, k := range []int{1, 7, 20} {
		// Garbage: images pushed and deleted again.
		for j := 0; j < 6; j++ {
			ref := fmt.Sprintf("yocto/junk%d:v1", j)
			srvPush(t, e, ref, srvRandomImage(t, 4096, 3))
			e.mustRun(t, 0, "delete", strings.TrimPrefix(ref, "yocto/"))
		}
		env, marker := pauseAt(t, fmt.Sprintf("gc-delete#%d", k))
		p := e.Start(t, env, "gc", "--yes")
		poll(t, "gc to sweep", 60*time.Second, p, func() bool { return exists(marker) })
		pid := markerPid(t, marker)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code, out := p.Wait(t)
		if code == 0 {
			t.Fatalf("round %d: killed gc exited 0:\n%s", i, out)
		}
		t.Logf("round %d: gc SIGKILLed after removal %d", i, k)
		// gc is online: the registry ran throughout and pulls go on while
		// the dead gc's hold lapses; the rerun does not wait for it.
		e.mustRun(t, 0, "status")
		pullAll(t, e, keep)
		if r := e.Run("verify"); r.Code != 0 {
			t.Fatalf("round %d: verify after the interrupted gc: %s", i, r.Out())
		}
		r := e.mustRun(t, 0, "gc", "--yes")
		wantOut(t, r, fmt.Sprintf("round %d: gc rerun", i), "Garbage collection complete")
		sameTags(t, fmt.Sprintf("round %d", i), keep, e.snapshot(t))
		r = e.mustRun(t, 0, "verify")
		wantOut(t, r, "verify after gc", "no unreferenced blobs")
		pullAll(t, e, keep)
	}
}

// storageMount mounts a tmpfs of size on the data directory of e (the
// test runs as root in CI); it is unmounted after the registry stopped.
func storageMount(t *testing.T, e *Env, size string) string {
	t.Helper()
	testtool.NeedRoot(t, "mounting a tmpfs")
	data := filepath.Join(e.Storage, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", data).CombinedOutput(); err != nil {
		t.Fatalf("mounting a %s tmpfs on %s (the fault tests need root): %v\n%s", size, data, err, out)
	}
	t.Cleanup(func() {
		e.Run("stop")
		if out, err := exec.Command("umount", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", data, err, out)
		}
	})
	return data
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v\n%s", mode, dir, err, out)
	}
}

// The data directory is an 8 MiB tmpfs: a push that does not fit fails
// clearly and leaves no tag behind, and gc gives the space of its partial
// upload back; then the file system turns read-only
// under the running registry: push, delete and gc fail clearly and no tag
// changes; verify stays clean throughout, and after the file system is
// writable again the push goes through.
func TestFaultStorageFullAndReadOnly(t *testing.T) {
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	data := storageMount(t, e, "8m")
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	before := e.snapshot(t)
	check := func(what string) {
		t.Helper()
		sameTags(t, what, before, e.snapshot(t))
		if got := e.snapshot(t); len(got) != len(before) {
			t.Errorf("%s: tags %v, want %v", what, got, before)
		}
		if r := e.Run("verify"); r.Code != 0 {
			t.Errorf("%s: verify: exit %d\n%s", what, r.Code, r.Out())
		}
	}

	// Disk full in the middle of an upload.
	root := filepath.Join(t.TempDir(), "images")
	bigBuild(t, root, "big", "qemux86-64", "x86_64", "20260501000000", 4<<20, 3)
	r := e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": root}, "push", "big", "--tag", "full")
	t.Logf("push into a full file system: exit %d\n%s", r.Code, r.Out())
	if r.Code == 0 || !strings.Contains(r.Stdout, "Error: big") || !strings.Contains(r.Stdout, "no space left on device") {
		t.Errorf("push into a full file system: exit %d, want a clear error naming the full disk\n%s", r.Code, r.Out())
	}
	check("disk full")
	e.mustRun(t, 0, "status")
	// The failed upload holds the space until gc frees it.
	if len(uploads(e, "yocto/big")) == 0 {
		t.Errorf("no partial upload left by the failed push")
	}
	r = e.mustRun(t, 0, "gc", "--yes")
	wantOut(t, r, "gc after disk full", "partial upload yocto/big upload", "partial upload(s)")
	if n := len(uploads(e, "yocto/big")); n != 0 {
		t.Errorf("%d partial upload(s) left after gc", n)
	}
	check("gc after disk full")

	// Read-only under the running registry; a deleted image leaves
	// garbage for gc to fail on.
	srvPush(t, e, "yocto/junk:v1", srvRandomImage(t, 4096, 2))
	e.mustRun(t, 0, "delete", "junk:v1")
	before = e.snapshot(t)
	small := filepath.Join(t.TempDir(), "images")
	sample.WriteTree(small, []sample.Build{{Spec: sample.Spec{Name: "app-server", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260601000000"}, Latest: true}})
	remount(t, data, "ro")
	r = e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": small}, "push", "app-server", "--tag", "latest")
	t.Logf("push into a read-only file system: exit %d\n%s", r.Code, r.Out())
	if r.Code == 0 || !strings.Contains(r.Stdout, "Error: app-server") || !strings.Contains(r.Stdout, "read-only file system") {
		t.Errorf("push into a read-only file system: exit %d, want a clear error\n%s", r.Code, r.Out())
	}
	check("read-only push")
	r = e.Run("delete", "app-server:latest")
	t.Logf("delete on a read-only file system: exit %d\n%s", r.Code, r.Out())
	if r.Code == 0 || !strings.Contains(r.Stdout, "read-only file system") {
		t.Errorf("delete on a read-only file system: exit %d, want a clear error\n%s", r.Code, r.Out())
	}
	check("read-only delete")
	r = e.Run("gc", "--yes")
	t.Logf("gc on a read-only file system: exit %d\n%s", r.Code, r.Out())
	if r.Code == 0 || !strings.Contains(r.Stdout, "read-only file system") {
		t.Errorf("gc on a read-only file system: exit %d, want a clear error\n%s", r.Code, r.Out())
	}
	e.mustRun(t, 0, "status") // gc started the registry again
	check("read-only gc")

	// Writable again: everything works.
	remount(t, data, "rw")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	r = e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": small}, "push", "app-server", "--tag", "latest")
	if r.Code != 0 {
		t.Fatalf("push after the file system is writable again: %s", r.Out())
	}
	e.mustRun(t, 0, "gc", "--yes")
	e.mustRun(t, 0, "verify")
	pullAll(t, e, e.snapshot(t))
}

// lastLines is the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// throttle is a TCP proxy to the registry at addr that forwards what
// clients send at rate bytes per second in all (uploads through it take
// long enough to be interrupted at a known point; answers are not slowed).
// It returns the proxy's host:port.
func throttle(t *testing.T, addr string, rate float64) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	next := time.Now()
	wait := func(n int) {
		mu.Lock()
		if now := time.Now(); next.Before(now) {
			next = now
		}
		next = next.Add(time.Duration(float64(n) / rate * float64(time.Second)))
		d := time.Until(next)
		mu.Unlock()
		time.Sleep(d)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			go func() {
				defer conns.Done()
				defer up.Close()
				buf := make([]byte, 16<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						wait(n)
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer conns.Done()
				defer c.Close()
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String()
}

// interrupt sends sig to the background command b and waits for it to
// exit; it returns how long that took after the signal.
func interrupt(t *testing.T, b *bg, sig syscall.Signal) time.Duration {
	t.Helper()
	sent := time.Now()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %v: %v", b.cmd.Args[1:], err)
	}
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
	}
	return time.Since(sent)
}

// stoppedBy fails unless the command b stopped within 2 s of sig
// (took) with the shell's status for sig, saying it was interrupted.
func stoppedBy(t *testing.T, what string, b *bg, sig syscall.Signal, took time.Duration) {
	t.Helper()
	code, out := b.Wait(t)
	name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[sig]
	if took > 2*time.Second || code != 128+int(sig) || !strings.Contains(out, "interrupted by "+name) {
		t.Fatalf("%s: exited %d %v after %s, want %d within 2s saying so:\n%s", what, code, took.Round(time.Millisecond), name, 128+int(sig), out)
	}
	t.Logf("%s: stopped %v after %s: %s", what, took.Round(time.Millisecond), name, lastLines(out, 1))
}

// widen rewrites the index.json of layout dir to list its one image n
// times, under as many ref names, each entry with its platform when
// plat is set.
func widen(t *testing.T, dir string, n int, plat *v1.Platform) {
	t.Helper()
	one := indexEntries(t, dir)[0]
	one.Platform = plat
	entries := make([]v1.Descriptor, n)
	for i := range entries {
		entries[i] = one
		entries[i].Annotations = map[string]string{"org.opencontainers.image.ref.name": fmt.Sprintf("r%d", i)}
	}
	writeIndex(t, dir, entries)
}

// hasManifest reports whether the (insecure) registry of e holds the OCI
// manifest digest in repo.
func hasManifest(e *Env, repo, digest string) bool {
	req, err := http.NewRequest(http.MethodHead, "http://"+e.URL+"/v2/"+repo+"/manifests/"+digest, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Accept", string(types.OCIManifestSchema1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// unchanged fails unless the registry of e holds exactly the tags of
// before, every one of them pulls completely, and verify is clean.
func unchanged(t *testing.T, e *Env, what string, before map[string]string) {
	t.Helper()
	after := e.snapshot(t)
	sameTags(t, what, before, after)
	if len(after) != len(before) {
		t.Errorf("%s: tags %v, want %v", what, after, before)
	}
	pullAll(t, e, after)
	if r := e.Run("verify"); r.Code != 0 {
		t.Errorf("%s: verify: exit %d\n%s", what, r.Code, r.Out())
	}
}

// SIGINT or SIGTERM stops a push of a big deploy tree within 2 s, wherever
// it is: reading a layout whose index.json lists 4,000 entries, uploading
// (through a proxy slowed to 2 MiB/s), or waiting for push.lock; a second
// signal exits at once even where the push cannot stop (held by its test
// hook). No tag of an image the push had not completed is written, every
// tag still pulls and verify stays clean; the same push then completes.
func TestFaultSignalPush(t *testing.T) {
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	before := e.snapshot(t)
	slow := throttle(t, e.URL, 2<<20)

	root := filepath.Join(t.TempDir(), "images")
	big := bigBuild(t, root, "big", "qemux86-64", "x86_64", "20260801000000", 8<<20, 3)
	wide := bigBuild(t, root, "wide", "qemux86-64", "x86_64", "20260801000000", 1<<10, 1)
	widen(t, wide, 4000, nil)
	env := map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_URL": slow}

	// Reading the wide layout (that alone took over a minute), then
	// uploading: SIGINT half a second in. Only big is pushed (discovery
	// reads every layout all the same): the images of a push go up
	// together, and the small wide one would be complete, and tagged,
	// before the signal.
	p := e.Start(t, env, "push", "big", "--strategy", "timestamp")
	time.Sleep(500 * time.Millisecond)
	stoppedBy(t, "push of a tree with a 4,000-entry index", p, syscall.SIGINT, interrupt(t, p, syscall.SIGINT))
	unchanged(t, e, "after SIGINT while reading", before)

	// Uploading: SIGTERM once a layer upload is in flight.
	old := uploads(e, "yocto/big")
	p = e.Start(t, env, "push", "big", "--tag", "upload")
	poll(t, "a layer upload in flight", 30*time.Second, p, func() bool { return uploadInFlight(e, "yocto/big", old) })
	stoppedBy(t, "push while uploading", p, syscall.SIGTERM, interrupt(t, p, syscall.SIGTERM))
	unchanged(t, e, "after SIGTERM while uploading", before)

	// Waiting for push.lock, which another push holds while it writes its
	// tags: SIGINT once the manifest is in.
	lock, err := os.OpenFile(filepath.Join(e.Storage, "push.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(t.TempDir(), "images")
	locked := bigBuild(t, small, "locked", "qemux86-64", "x86_64", "20260801000000", 64<<10, 2)
	p = e.Start(t, map[string]string{"DEPLOY_DIR_IMAGES": small}, "push", "locked", "--tag", "locked")
	poll(t, "the manifest of locked", 30*time.Second, p, func() bool { return hasManifest(e, "yocto/locked", layoutManifest(t, locked)) })
	time.Sleep(300 * time.Millisecond)
	stoppedBy(t, "push waiting for push.lock", p, syscall.SIGINT, interrupt(t, p, syscall.SIGINT))
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	unchanged(t, e, "after SIGINT while waiting for the lock", before)

	// Held by the test hook before the index writes, where no context is
	// watched: SIGINT does not stop it, a second signal does, at once.
	henv, marker := pauseAt(t, "push-before-index")
	henv["DEPLOY_DIR_IMAGES"] = small
	p = e.Start(t, henv, "push", "locked", "--tag", "held")
	poll(t, "push to reach the index writes", 30*time.Second, p, func() bool { return exists(marker) })
	p.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	if !p.running() {
		code, out := p.Wait(t)
		t.Fatalf("held push exited (%d) at the first signal:\n%s", code, out)
	}
	took := interrupt(t, p, syscall.SIGTERM)
	if code, out := p.Wait(t); took > 2*time.Second || code != 143 {
		t.Fatalf("second signal: exited %d %v after SIGTERM, want 143 at once:\n%s", code, took, out)
	}
	t.Logf("second signal: exited %v after SIGTERM", took.Round(time.Millisecond))
	unchanged(t, e, "after a second signal", before)

	// Without a signal, the same push completes.
	r := e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": root}, "push", "big", "--tag", "done")
	if r.Code != 0 {
		t.Fatalf("push after the signals: %s", r.Out())
	}
	if got := e.platforms(t, "yocto/big:done")["linux/amd64"]; got != layoutManifest(t, big) {
		t.Fatalf("yocto/big:done holds %s, want %s", got, layoutManifest(t, big))
	}
	pullAll(t, e, e.snapshot(t))
}

// SIGINT or SIGTERM stops an import within 2 s: of a layout whose
// index.json lists a big image 4,000 times (linux/amd64 each), half a
// second in (checking that index alone took over a minute), and of a big
// oci-archive once a layer upload is in flight (through a proxy slowed to
// 2 MiB/s). No tag is written, every tag still pulls, verify stays clean.
func TestFaultSignalImport(t *testing.T) {
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	before := e.snapshot(t)
	env := map[string]string{"CONTAINER_REGISTRY_URL": throttle(t, e.URL, 2<<20)}

	root := filepath.Join(t.TempDir(), "images")
	wide := bigBuild(t, root, "wide", "qemux86-64", "x86_64", "20260801000000", 8<<20, 3)
	widen(t, wide, 4000, &v1.Platform{OS: "linux", Architecture: "amd64"})
	p := e.Start(t, env, "import", "oci:"+wide, "wide")
	time.Sleep(500 * time.Millisecond)
	stoppedBy(t, "import of a 4,000-entry layout", p, syscall.SIGINT, interrupt(t, p, syscall.SIGINT))
	unchanged(t, e, "after SIGINT", before)

	big := bigBuild(t, root, "big", "qemux86-64", "x86_64", "20260801000000", 8<<20, 3)
	archive := filepath.Join(t.TempDir(), "big-oci.tar")
	tarDir(t, big, archive)
	old := uploads(e, "yocto/bigarchive")
	p = e.Start(t, env, "import", "oci-archive:"+archive, "bigarchive")
	poll(t, "a layer upload in flight", 30*time.Second, p, func() bool { return uploadInFlight(e, "yocto/bigarchive", old) })
	stoppedBy(t, "import of an oci-archive", p, syscall.SIGTERM, interrupt(t, p, syscall.SIGTERM))
	unchanged(t, e, "after SIGTERM", before)

	// Without a signal, the same import completes.
	e.mustRun(t, 0, "import", "oci-archive:"+archive, "bigarchive")
	if err := skopeoPull(t, e, "yocto/bigarchive:latest"); err != nil {
		t.Fatal(err)
	}
}

// SIGTERM stops verify within 2 s while it hashes a big blob (a layer
// grown into a 64 GiB sparse file: hashing it took minutes, SIGTERM
// ignored). Restored, the storage verifies clean and every tag pulls.
func TestFaultSignalVerify(t *testing.T) {
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	root := filepath.Join(t.TempDir(), "images")
	bigBuild(t, root, "big", "qemux86-64", "x86_64", "20260801000000", 1<<20, 2)
	e.mustRun(t, 0, "push", "--strategy", "latest")
	if r := e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": root}, "push", "big", "--tag", "v1"); r.Code != 0 {
		t.Fatalf("push: %s", r.Out())
	}
	before := e.snapshot(t)
	var largest string
	var size int64
	filepath.WalkDir(filepath.Join(e.Storage, "data", "docker", "registry", "v2", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if info, ierr := d.Info(); err == nil && ierr == nil && d.Name() == "data" && info.Size() > size {
			largest, size = p, info.Size()
		}
		return nil
	})
	saved, err := os.ReadFile(largest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(largest, 64<<30); err != nil {
		t.Fatal(err)
	}
	p := e.Start(t, nil, "verify")
	time.Sleep(500 * time.Millisecond)
	stoppedBy(t, "verify of a 64 GiB blob", p, syscall.SIGTERM, interrupt(t, p, syscall.SIGTERM))
	if err := os.WriteFile(largest, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	unchanged(t, e, "after SIGTERM", before)
}
