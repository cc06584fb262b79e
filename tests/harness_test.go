package tests

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
)

// toolBin is the ocireg-tool binary built once for all tests.
var toolBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ocireg-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolBin = filepath.Join(dir, "ocireg-tool")
	build := exec.Command("go", "build", "-tags", "ocireg_testhooks", "-o", toolBin, "../cmd/ocireg-tool")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ocireg-tool:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Env is one generated helper with its own storage and port.
type Env struct {
	t       *testing.T
	Storage string
	Port    string
	URL     string // host:port
	Script  string
	// Extra holds environment variables added to every script run.
	Extra map[string]string
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout string
	Stderr string
	Code   int
}

// Out is stdout and stderr together, for messages.
func (r Result) Out() string { return r.Stdout + r.Stderr }

// FreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func FreePort(t *testing.T) string { return testcfg.FreePort(t) }

// NewEnv writes an env dump with vars (plus a fresh storage directory and
// port unless vars sets them), runs `ocireg-tool generate` on it and
// returns the helper. The registry is stopped when the test ends.
func NewEnv(t *testing.T, vars map[string]string) *Env {
	t.Helper()
	e := &Env{t: t, Extra: map[string]string{}}
	all := map[string]string{
		"TOPDIR":                      t.TempDir(),
		"CONTAINER_REGISTRY_STORAGE":  filepath.Join(t.TempDir(), "container-registry"),
		"CONTAINER_REGISTRY_INSECURE": "1",
	}
	for k, v := range vars {
		all[k] = v
	}
	if _, ok := all["CONTAINER_REGISTRY_URL"]; !ok {
		all["CONTAINER_REGISTRY_URL"] = "localhost:" + FreePort(t)
	}
	if all["CONTAINER_REGISTRY_SECURE"] == "1" {
		if _, ok := vars["CONTAINER_REGISTRY_INSECURE"]; !ok {
			all["CONTAINER_REGISTRY_INSECURE"] = "0"
		}
	}
	e.Storage = all["CONTAINER_REGISTRY_STORAGE"]
	e.URL = all["CONTAINER_REGISTRY_URL"]
	_, e.Port, _ = net.SplitHostPort(e.URL)
	e.Script = filepath.Join(e.Storage, "container-registry.sh")

	dump := filepath.Join(t.TempDir(), "env.dump")
	if err := os.WriteFile(dump, []byte(DumpText(all)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := RunTool(t, nil, "generate", "--env-dump", dump)
	if r.Code != 0 {
		t.Fatalf("generate failed (%d): %s", r.Code, r.Out())
	}
	t.Cleanup(func() {
		if _, err := os.Stat(e.Script); err == nil {
			e.Run("stop")
		}
	})
	return e
}

// DumpText renders vars as the class's env dump.
func DumpText(vars map[string]string) string {
	return config.FormatDump(vars)
}

// baseEnv is a minimal environment: nothing of the developer's shell leaks
// into the tests.
func baseEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"LANG=C.UTF-8",
	}
}

// Run runs the generated script with args and e.Extra in the environment.
func (e *Env) Run(args ...string) Result {
	return e.RunEnv(nil, args...)
}

// RunEnv runs the generated script with extra environment variables.
func (e *Env) RunEnv(env map[string]string, args ...string) Result {
	e.t.Helper()
	merged := map[string]string{}
	for k, v := range e.Extra {
		merged[k] = v
	}
	for k, v := range env {
		merged[k] = v
	}
	return runCmd(e.t, e.Script, merged, args...)
}

// RunTool runs the ocireg-tool binary directly.
func RunTool(t *testing.T, env map[string]string, args ...string) Result {
	t.Helper()
	return runCmd(t, toolBin, env, args...)
}

func runCmd(t *testing.T, bin string, env map[string]string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = baseEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v: timed out", bin, args)
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// newPool is a certificate pool holding pem.
func newPool(t *testing.T, pem []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in PEM data")
	}
	return pool
}
