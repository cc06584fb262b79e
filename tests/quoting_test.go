package tests

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// hintRe finds a command hint: the text after one of the lead-ins, up to
// the end of the line.
var hintRe = regexp.MustCompile(`(?m)(?:Start it first|Stop it with): (.*)$`)

// A storage path with a space and an ESC sequence: info, generate and the
// hints print it quoted and escaped (no control character reaches the
// terminal), and a hint that shows a command works when pasted into bash.
func TestOddStoragePathQuoted(t *testing.T) {
	bash := testtool.Need(t, "bash")
	storage := filepath.Join(t.TempDir(), "my builds\x1b[31m", "container-registry")
	quoted := "$'" + strings.ReplaceAll(storage, "\x1b", `\e`) + "'"
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_STORAGE": storage})
	noESC := func(what string, r Result) {
		t.Helper()
		if strings.Contains(r.Out(), "\x1b") {
			t.Errorf("%s prints a raw ESC:\n%q", what, r.Out())
		}
	}

	r := RunTool(t, nil, "generate", "--env-dump", dumpFile(t, map[string]string{"CONTAINER_REGISTRY_STORAGE": storage, "CONTAINER_REGISTRY_URL": e.URL, "TOPDIR": t.TempDir()}, ""))
	if r.Code != 0 {
		t.Fatalf("generate again: %s", r.Out())
	}
	noESC("generate", r)
	for _, want := range []string{"  Storage: " + quoted + "\n", "  Script:  " + "$'" + strings.ReplaceAll(e.Script, "\x1b", `\e`) + "'\n"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("generate lacks %q:\n%s", want, r.Stdout)
		}
	}

	r = e.mustRun(t, 0, "info")
	noESC("info", r)
	if want := "  Storage:      " + quoted + "\n"; !strings.Contains(r.Stdout, want) {
		t.Errorf("info lacks %q:\n%s", want, r.Stdout)
	}
	if want := regexp.MustCompile(`CONTAINER_REGISTRY_STORAGE +` + regexp.QuoteMeta(quoted)); !want.MatchString(r.Stdout) {
		t.Errorf("info lacks %s:\n%s", want, r.Stdout)
	}

	// Down: the hint says how to start it; pasted into bash, it does.
	r = e.mustRun(t, 1, "list")
	noESC("list while down", r)
	m := hintRe.FindStringSubmatch(r.Stdout)
	if m == nil || !strings.HasSuffix(m[1], " start") {
		t.Fatalf("list while down: no start hint:\n%s", r.Stdout)
	}
	out, err := exec.Command(bash, "-c", m[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Registry started") {
		t.Fatalf("the start hint %s, run by bash: %v\n%s", m[1], err, out)
	}
	// The stop hint of start works the same way.
	m = hintRe.FindStringSubmatch(string(out))
	if m == nil || !strings.HasSuffix(m[1], " stop") || strings.Contains(m[1], "\x1b") {
		t.Fatalf("start: no clean stop hint:\n%q", out)
	}
	r = e.mustRun(t, 0, "status")
	out, err = exec.Command(bash, "-c", m[1]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Registry stopped") {
		t.Fatalf("the stop hint %s, run by bash: %v\n%s", m[1], err, out)
	}
	e.mustRun(t, 1, "status")

	// Hints in other messages use the same quoted name.
	e.mustRun(t, 0, "start")
	r = e.mustRun(t, 2, "delete")
	noESC("delete usage", r)
	if !strings.Contains(r.Stdout, "$'") {
		t.Errorf("delete usage does not quote the script:\n%s", r.Stdout)
	}
}
