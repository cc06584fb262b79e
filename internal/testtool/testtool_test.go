package testtool

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "false": false, "FALSE": false, "0": false, " ": false, "true": true, "1": true, "yes": true} {
		t.Setenv("CI", v)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI() = %v, want %v", v, got, want)
		}
	}
}

// ender records how Missing ended a test instead of ending this one.
type ender struct {
	testing.TB
	skipped, failed string
}

func (e *ender) Helper()           {}
func (e *ender) Skip(args ...any)  { e.skipped = args[0].(string) }
func (e *ender) Fatal(args ...any) { e.failed = args[0].(string) }

// A missing program skips with one line naming `make deps`, and fails in CI.
func TestNeedMissing(t *testing.T) {
	prog := "ocireg-no-such-program"
	t.Setenv("CI", "")
	var e ender
	Need(&e, prog)
	if want := prog + " not installed: run `make deps`"; e.skipped != want || e.failed != "" {
		t.Errorf("outside CI: skipped %q failed %q, want skipped %q", e.skipped, e.failed, want)
	}
	t.Setenv("CI", "true")
	e = ender{}
	Need(&e, prog)
	if e.skipped != "" || !strings.HasPrefix(e.failed, prog+" not installed: run `make deps`") || strings.Contains(e.failed, "\n") {
		t.Errorf("in CI: skipped %q failed %q, want one failed line", e.skipped, e.failed)
	}
	e = ender{}
	NeedFile(&e, "SeaweedFS", filepath.Join(t.TempDir(), "weed"), Deps)
	if !strings.HasPrefix(e.failed, "SeaweedFS not found at ") {
		t.Errorf("missing file: %q", e.failed)
	}
}

// A program that is there is returned, and nothing ends.
func TestNeedPresent(t *testing.T) {
	t.Setenv("CI", "true")
	var e ender
	if p := Need(&e, "go"); p == "" || e.skipped != "" || e.failed != "" {
		t.Errorf("go: %q skipped %q failed %q", p, e.skipped, e.failed)
	}
}

// Every program a test in the project asks for is one `make deps`
// installs, so the one line Need prints is true.
func TestNeedsAreDeps(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nDEPS_COMMANDS :=(.*?)\n\n`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no DEPS_COMMANDS in the Makefile")
	}
	deps := map[string]bool{}
	for _, f := range strings.Fields(strings.ReplaceAll(string(m[1]), "\\", " ")) {
		deps[strings.SplitN(f, ":", 2)[0]] = true
	}
	need := regexp.MustCompile(`testtool\.Need\(t, "([^"]+)"\)`)
	seen := 0
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "build" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range need.FindAllSubmatch(src, -1) {
			seen++
			if !deps[string(m[1])] {
				t.Errorf("%s needs %s, which `make deps` does not install (add it to DEPS_COMMANDS)", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("no testtool.Need calls found: is the pattern stale?")
	}
}
