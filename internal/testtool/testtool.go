// Package testtool is the one place a test asks for something the Go
// toolchain does not give it: a program on PATH (skopeo, podman,
// chromium, redis-server, docker-registry, openssl...), a file built or
// unpacked beside the project (SeaweedFS, the yocto snapshot), or root.
//
// When it is missing, a test outside CI is skipped with one line saying
// what is missing and the step that provides it ("skopeo not installed:
// run `make deps`"), so `go test ./...` on a laptop tests what it can. In
// CI (the CI variable set to anything but "", "0" or "false", as CI
// services set it) the same line fails the test: CI never skips.
//
// Test-only: nothing outside tests imports it.
package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Deps is the step that installs every program Need asks for (the
// Makefile's DEPS_COMMANDS) and builds SeaweedFS.
const Deps = "run `make deps`"

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// Need returns the path of the program prog on PATH. When it is missing,
// the test ends: "prog not installed: run `make deps`", skipped outside
// CI, failed in CI.
func Need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		Missing(t, prog+" not installed", Deps)
	}
	return p
}

// NeedFile returns path when it exists; otherwise the test ends as Need
// does, with "what not found at path: fix".
func NeedFile(t testing.TB, what, path, fix string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, what+" not found at "+path, fix)
	}
	return path
}

// NeedRoot ends the test as Need does unless it runs as root; why says
// what needs root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, why+" needs root", "run the tests as root (CI does)")
	}
}

// Missing ends the test for something it needs and does not have, in one
// line, "what: fix": skipped outside CI, failed in CI.
func Missing(t testing.TB, what, fix string) {
	t.Helper()
	msg := what + ": " + fix
	if InCI() {
		t.Fatal(msg + " (CI never skips)")
		return
	}
	t.Skip(msg)
}

// Cosign returns the path of the cosign binary `make deps` builds into the
// cache tests/cosign.sh names (sigstore's verifier, for the signing
// tests); missing, the test ends as Need does.
func Cosign(t testing.TB) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "tests", "cosign.sh")
	out, err := exec.Command("sh", script, "path").Output()
	if err != nil {
		t.Fatalf("tests/cosign.sh path: %v", err)
	}
	return NeedFile(t, "cosign", strings.TrimSpace(string(out)), Deps+" (it builds it once per machine)")
}
