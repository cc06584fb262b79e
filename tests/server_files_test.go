package tests

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runUmask runs the script with args under umask mask (as a shell would).
func (e *Env) runUmask(t *testing.T, mask string, args ...string) Result {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `umask "$0" && shift && exec "$@"`, mask, "sh", e.Script}, args...)...)
	cmd.Env = baseEnv()
	for k, v := range e.Extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	if err != nil && r.Code == 0 {
		t.Fatalf("%v: %v", args, err)
	}
	return r
}

// A leaked _state value: anything but the redaction.
var stateLeak = regexp.MustCompile(`_state=([^&\s"']*)`)

// Under umask 000, in secure mode, start and push write nothing that group
// or others may write; keys, password, htpasswd, http.secret and the log
// are 0600; keys and a log left 0644 (by hand or an older version) are set
// to 0600 by start; the log holds no upload state token.
func TestServerFileModes(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "DEPLOY_DIR_IMAGES": deployTree(t)})
	log := filepath.Join(e.Storage, "registry-"+e.Port+".log")
	keys := []string{filepath.Join(e.Storage, "pki", "ca.key"), filepath.Join(e.Storage, "pki", "server.key")}
	if err := os.WriteFile(log, []byte("a line of an older start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{log}, keys...) {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"start"}, {"push", "--strategy", "latest"}} {
		if r := e.runUmask(t, "000", args...); r.Code != 0 {
			t.Fatalf("%v under umask 000: exit %d\n%s", args, r.Code, r.Out())
		}
	}
	e.mustRun(t, 0, "stop")

	private := append([]string{log, filepath.Join(e.Storage, "auth", "password"), filepath.Join(e.Storage, "auth", "htpasswd"),
		filepath.Join(e.Storage, "http.secret")}, keys...)
	for _, f := range private {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	var writable []string
	blobs := 0
	filepath.WalkDir(e.Storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode()&fs.ModeSymlink != 0 {
			return nil
		}
		if info.Mode().Perm()&0o022 != 0 {
			writable = append(writable, strings.TrimPrefix(p, e.Storage)+" "+info.Mode().Perm().String())
		}
		if d.Name() == "data" && strings.Contains(p, "/blobs/") {
			blobs++
		}
		return nil
	})
	if blobs == 0 {
		t.Fatal("no blob in the storage: the push wrote nothing")
	}
	if len(writable) > 0 {
		t.Errorf("%d entries of the storage are writable by group or others, e.g. %v", len(writable), writable[:min(len(writable), 5)])
	}
	text := readFile(t, log)
	leaks := 0
	for _, m := range stateLeak.FindAllStringSubmatch(text, -1) {
		if m[1] != "REDACTED" {
			leaks++
		}
	}
	if leaks > 0 || !strings.Contains(text, "_state=REDACTED") {
		t.Errorf("the log shows %d upload state token(s) (and %d redacted); want none shown, some redacted", leaks, strings.Count(text, "_state=REDACTED"))
	}
}
