package tests

import (
	"os"
	"path/filepath"
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
	if r.Code != 0 || !strings.Contains(r.Stdout, "push [<target>] [options]") || !strings.Contains(r.Stdout, e.URL) {
		t.Errorf("help: code %d, output:\n%s", r.Code, r.Out())
	}
	r = e.Run("frobnicate")
	if r.Code == 0 || !strings.Contains(r.Stdout, "Unknown command") || !strings.Contains(r.Stdout, "Commands:") {
		t.Errorf("unknown command: code %d, stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// generate reads a real `bitbake -e` output, and target installs payloads
// from it; bad input exits non-zero naming the file and line or variable.
func TestGenerateAndTargetCLI(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "cr")
	r := RunTool(t, nil, "generate", "--env-dump", "../config/testdata/bitbake-e-base-files.txt", "--storage", storage)
	if r.Code != 0 {
		t.Fatalf("generate from bitbake -e: %d %s", r.Code, r.Out())
	}
	if !strings.Contains(r.Stdout, filepath.Join(storage, "container-registry.sh")) {
		t.Errorf("generate output does not name the script:\n%s", r.Stdout)
	}
	script, err := os.ReadFile(filepath.Join(storage, "container-registry.sh"))
	if err != nil || !strings.Contains(string(script), `CONTAINER_REGISTRY_TAG_STRATEGY="sha branch latest"`) {
		t.Errorf("script does not carry the dump's strategy (%v):\n%s", err, script)
	}

	dest := t.TempDir()
	r = RunTool(t, nil, "target", "docker", "--env-dump", "../config/testdata/bitbake-e-base-files.txt", "--dest", dest)
	if r.Code != 0 {
		t.Fatalf("target docker: %d %s", r.Code, r.Out())
	}
	daemon, _ := os.ReadFile(filepath.Join(dest, "etc/docker/daemon.json"))
	if !strings.Contains(string(daemon), `"10.0.2.2:5000"`) || !strings.Contains(string(daemon), "/usr/bin/vxn-oci-runtime") {
		t.Errorf("daemon.json:\n%s", daemon)
	}

	// The environment alone, without a dump.
	r = RunTool(t, map[string]string{"CONTAINER_REGISTRY_STORAGE": filepath.Join(t.TempDir(), "x"), "CONTAINER_REGISTRY_URL": "localhost:5999"}, "generate")
	if r.Code != 0 {
		t.Fatalf("generate from the environment: %d %s", r.Code, r.Out())
	}

	bad := filepath.Join(t.TempDir(), "bad.env")
	os.WriteFile(bad, []byte("CONTAINER_REGISTRY_URL=\"localhost:5000\"\nnot an assignment\n"), 0o644)
	cases := []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"generate", "--env-dump", bad, "--storage", storage}, nil, 1, bad + ":2: malformed line"},
		{[]string{"generate", "--storage", storage}, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_INSECURE": "1"}, 1, "CONTAINER_REGISTRY_INSECURE=1"},
		{[]string{"generate", "--storage", storage}, map[string]string{"CONTAINER_REGISTRY_CERT_SAN": "FOO:bar"}, 1, "CONTAINER_REGISTRY_CERT_SAN"},
		{[]string{"generate", "--env-dump", "/nonexistent/dump"}, nil, 2, "/nonexistent/dump"},
		{[]string{"target", "podman", "--dest", dest}, nil, 2, `must be one of "docker","oci","ca"`},
		{[]string{"target", "docker"}, nil, 2, "--dest"},
		{[]string{"target", "ca", "--dest", dest, "--env-dump", "../config/testdata/bitbake-e-base-files.txt"}, nil, 1, "ca.crt not found"},
		{[]string{"nosuchcommand"}, nil, 2, "Unknown command"},
	}
	for _, tc := range cases {
		r := RunTool(t, tc.env, tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Out(), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q; output:\n%s", tc.args, r.Code, tc.code, tc.want, r.Out())
		}
	}
	after, _ := os.ReadFile(filepath.Join(storage, "container-registry.sh"))
	if string(after) != string(script) {
		t.Error("a failed generate changed the existing script")
	}
}
