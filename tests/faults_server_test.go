package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Fault tests of the server process itself: concurrent starts, a storage
// removed under the running registry.

// serveProcs returns the live `ocireg-tool serve` processes serving
// storage (their working directory, as start sets it), sorted.
func serveProcs(t *testing.T, storage string) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || isZombie(pid) {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "serve" || filepath.Base(args[0]) != "ocireg-tool" {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join(d, "cwd")); err == nil && cwd == storage {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// listeners returns the pids holding a socket that listens on TCP port,
// from /proc/net/tcp{,6} and the processes' descriptors.
func listeners(t *testing.T, port string) []int {
	t.Helper()
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, so := range procSockets() {
		if so.Listening && so.LocalPort == n {
			inodes[so.Link] = true
		}
	}
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, d := range dirs {
		fds, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(d, fd.Name())); err == nil && inodes[link] {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
				pids = append(pids, pid)
				break
			}
		}
	}
	slices.Sort(pids)
	return pids
}

// Three `start` at once, several rounds: one launches the registry, the
// others find it running. After each round exactly one server of the
// storage lives, it listens on the port, the pid file names it and status
// is healthy; stop leaves no server behind.
func TestFaultConcurrentStart(t *testing.T) {
	const rounds, starters = 6, 3
	e := NewEnv(t, nil)
	// An orphan that stop cannot see is killed when the test ends.
	t.Cleanup(func() {
		for _, pid := range serveProcs(t, e.Storage) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for i := 0; i < rounds; i++ {
		var bs []*bg
		for j := 0; j < starters; j++ {
			bs = append(bs, e.Start(t, nil, "start"))
		}
		launched := 0
		for _, b := range bs {
			code, out := b.Wait(t)
			switch {
			case code != 0:
				t.Errorf("round %d: start exit %d:\n%s", i, code, out)
			case strings.Contains(out, "Registry started"):
				launched++
			case !strings.Contains(out, "already running (pid"):
				t.Errorf("round %d: start said neither started nor already running:\n%s", i, out)
			}
		}
		procs := serveProcs(t, e.Storage)
		pid := e.pidOf(t)
		ls := listeners(t, e.Port)
		t.Logf("round %d: %d start(s) launched; servers %v, pid file %d, listeners %v", i, launched, procs, pid, ls)
		if launched != 1 {
			t.Errorf("round %d: %d starts say they launched the registry, want 1", i, launched)
		}
		if len(procs) != 1 || procs[0] != pid || !slices.Equal(ls, []int{pid}) {
			t.Errorf("round %d: servers %v, pid file %d, listeners %v: want the one server, named by the pid file, listening", i, procs, pid, ls)
		}
		r := e.Run("status")
		if r.Code != 0 || !strings.Contains(r.Stdout, fmt.Sprintf("Registry running (pid %d)", pid)) || !strings.Contains(r.Stdout, "healthy") {
			t.Errorf("round %d: status exit %d:\n%s", i, r.Code, r.Out())
		}
		e.mustRun(t, 0, "stop")
		deadline := time.Now().Add(10 * time.Second)
		for len(serveProcs(t, e.Storage)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if left := serveProcs(t, e.Storage); len(left) > 0 {
			t.Fatalf("round %d: servers %v still run after stop", i, left)
		}
	}
}

// data/ is removed under the running registry and the tree pushed again:
// the push must upload everything anew (or fail), never report tags whose
// blobs are gone. Also with the in-memory blob cache that registry-config.yml
// files generated before carried.
func TestFaultDataRemovedUnderRegistry(t *testing.T) {
	base := deployTree(t)
	for _, tc := range []struct {
		name  string
		cache bool
	}{{"generated config", false}, {"config with the in-memory blob cache", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
			if tc.cache {
				cfg := filepath.Join(e.Storage, "registry-config.yml")
				yml := readFile(t, cfg)
				yml = strings.Replace(yml, "  delete:\n", "  cache:\n    blobdescriptor: inmemory\n  delete:\n", 1)
				if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e.mustRun(t, 0, "start")
			e.mustRun(t, 0, "push", "--strategy", "latest")
			before := e.snapshot(t)
			if err := os.RemoveAll(filepath.Join(e.Storage, "data")); err != nil {
				t.Fatal(err)
			}
			r := e.Run("push", "--strategy", "latest")
			t.Logf("push after data/ was removed: exit %d: %s", r.Code, lastLines(r.Stdout, 1))
			if r.Code != 0 {
				return // a failure is honest; success must be true
			}
			if n := uploaded(t, r); n == "0" {
				t.Errorf("push after data/ was removed uploaded 0 bytes:\n%s", r.Stdout)
			}
			after := e.snapshot(t)
			if len(after) != len(before) {
				t.Errorf("tags after the push: %v, want %v", after, before)
			}
			pullAll(t, e, after)
			if r := e.Run("verify"); r.Code != 0 {
				t.Errorf("verify: exit %d\n%s", r.Code, r.Out())
			}
		})
	}
}

// The registry died and its pid now belongs to another program: status
// says so instead of calling the pid gone, and start cleans up.
func TestStatusPidReused(t *testing.T) {
	e := NewEnv(t, nil)
	pidFile := filepath.Join(e.Storage, "registry-"+e.Port+".pid")
	self := os.Getpid() // alive, and not the registry
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n1\n", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(t, 1, "status")
	wantOut(t, r, "status over a reused pid", "Registry not running", fmt.Sprintf("pid %d is now another program", self))
	if strings.Contains(r.Stdout, "is gone") {
		t.Errorf("status calls a live pid gone:\n%s", r.Stdout)
	}
	if err := os.WriteFile(pidFile, []byte("999999\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(t, 1, "status")
	wantOut(t, r, "status over a dead pid", "pid 999999 is gone")
	r = e.mustRun(t, 0, "start")
	wantOut(t, r, "start over a stale pid file", "stale pid file", "Registry started")
}
