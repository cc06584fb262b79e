package tests

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pidOf returns the pid recorded in the pid file of e's port.
func (e *Env) pidOf(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.Storage, "registry-"+e.Port+".pid"))
	if err != nil {
		t.Fatalf("reading pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)[0])
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	return pid
}

// mustRun runs the script and fails the test unless it exits with code.
func (e *Env) mustRun(t *testing.T, code int, args ...string) Result {
	t.Helper()
	r := e.Run(args...)
	if r.Code != code {
		t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.Code, code, r.Stdout, r.Stderr)
	}
	return r
}

func wantOut(t *testing.T, r Result, what string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("%s: stdout lacks %q:\n%s", what, s, r.Stdout)
		}
	}
}

var readyRe = regexp.MustCompile(`Registry started \(pid \d+, ready in ([^)]+)\)`)

// Lifecycle: start, status, idempotent start and stop, stale pid files
// after kill -9.
func TestLifecycle(t *testing.T) {
	e := NewEnv(t, nil)
	r := e.mustRun(t, 0, "start")
	wantOut(t, r, "start", "http://"+e.URL, "insecure (HTTP)", e.Storage, filepath.Join(e.Storage, "registry-config.yml"), "Registry started")
	if m := readyRe.FindStringSubmatch(r.Stdout); m != nil {
		t.Logf("start-to-ready: %s", m[1])
	}
	if r.Stderr != "" {
		t.Errorf("start wrote to stderr through the script: %s", r.Stderr)
	}
	r = e.mustRun(t, 0, "status")
	wantOut(t, r, "status", "healthy", "http://"+e.URL, "insecure (HTTP)")
	r = e.mustRun(t, 0, "start")
	wantOut(t, r, "second start", "already running")
	pid := e.pidOf(t)

	r = e.mustRun(t, 0, "stop")
	wantOut(t, r, "stop", "stopped")
	if _, err := os.Stat(filepath.Join(e.Storage, "registry-"+e.Port+".pid")); !os.IsNotExist(err) {
		t.Errorf("pid file still there after stop: %v", err)
	}
	if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
		t.Errorf("pid %d still alive after stop", pid)
	}
	r = e.mustRun(t, 1, "status")
	wantOut(t, r, "status when stopped", "Registry not running")
	r = e.mustRun(t, 0, "stop")
	wantOut(t, r, "second stop", "not running")

	// kill -9 leaves a stale pid file behind.
	e.mustRun(t, 0, "start")
	pid = e.pidOf(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, pid)
	r = e.mustRun(t, 1, "status")
	wantOut(t, r, "status after kill -9", "Registry not running", "stale")
	r = e.mustRun(t, 0, "start")
	wantOut(t, r, "start after kill -9", "stale pid file", "Registry started")
	e.mustRun(t, 0, "status")

	// A pid file naming a live process that is not the registry (pid
	// reuse): our own test process.
	e.mustRun(t, 0, "stop")
	pidFile := filepath.Join(e.Storage, "registry-"+e.Port+".pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n12345\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, 1, "status")
	r = e.mustRun(t, 0, "start")
	wantOut(t, r, "start over a reused pid", "stale pid file", "Registry started")
	e.mustRun(t, 0, "stop")
}

// A port taken by another program makes start fail clearly.
func TestStartPortInUse(t *testing.T) {
	e := NewEnv(t, nil)
	ln, err := net.Listen("tcp", ":"+e.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := e.Run("start")
	if r.Code == 0 || !strings.Contains(r.Stdout, "already in use") {
		t.Fatalf("start on a busy port: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(e.Storage, "registry-"+e.Port+".pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && !isZombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not die", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
