package tests

import (
	"os"
	"strings"
	"testing"
)

// The generated script reaches the tool, prints help and rejects unknown
// commands on stdout with a non-zero exit.
func TestScriptHelpAndUnknownCommand(t *testing.T) {
	e := NewEnv(t, nil)
	st, err := os.Stat(e.Script)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("script mode = %v, want 0755", st.Mode().Perm())
	}
	r := e.Run("help")
	if r.Code != 0 || !strings.Contains(r.Stdout, "push [image|path]") || !strings.Contains(r.Stdout, e.URL) {
		t.Errorf("help: code %d, output:\n%s", r.Code, r.Out())
	}
	r = e.Run("frobnicate")
	if r.Code == 0 || !strings.Contains(r.Stdout, "Unknown command") || !strings.Contains(r.Stdout, "Commands:") {
		t.Errorf("unknown command: code %d, stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}
