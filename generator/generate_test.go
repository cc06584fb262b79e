package generator

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
)

// snapshot describes files by content and mtime.
func snapshot(t *testing.T, paths ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(p)
		fmt.Fprintf(&b, "%s %x %v %v\n", p, data, st.ModTime().UnixNano(), st.Mode())
	}
	return b.String()
}

// fakeTool stands in for the running binary that generate copies.
func fakeTool(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ocireg-tool")
	writeFile(t, p, "#!/bin/sh\necho fake tool \"$@\"\n")
	os.Chmod(p, 0o755)
	return p
}

func TestGenerateIdempotent(t *testing.T) {
	for _, secure := range []string{"0", "1"} {
		t.Run("secure="+secure, func(t *testing.T) {
			c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_SECURE": secure, "CONTAINER_REGISTRY_PASSWORD": "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			tool := fakeTool(t)
			res, err := Generate(c, tool, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			files := []string{c.Script(), c.RegistryConfig(), c.ToolCopy()}
			if secure == "1" {
				files = append(files, c.CACert(), c.CAKey(), c.ServerCert(), c.ServerKey(), c.HtpasswdFile(), c.PasswordFile())
			}
			if len(res.Changed) == 0 {
				t.Error("first run reports no change")
			}
			before := snapshot(t, files...)
			time.Sleep(10 * time.Millisecond)
			res, err = Generate(c, tool, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Changed) != 0 {
				t.Errorf("second run changed %v", res.Changed)
			}
			if after := snapshot(t, files...); after != before {
				t.Errorf("second run changed files:\n%s\nvs\n%s", before, after)
			}
			modes := map[string]os.FileMode{c.Script(): 0o755, c.ToolCopy(): 0o755, c.RegistryConfig(): 0o644}
			if secure == "1" {
				modes[c.PasswordFile()] = 0o600
				modes[c.HtpasswdFile()] = 0o600
				modes[c.AuthDir()] = 0o700 | os.ModeDir
			}
			for p, m := range modes {
				if st, _ := os.Stat(p); st.Mode() != m {
					t.Errorf("%s mode %v, want %v", p, st.Mode(), m)
				}
			}
			script, _ := os.ReadFile(c.Script())
			if strings.Contains(string(script), "s3cret") {
				t.Error("the password is baked into the script")
			}
		})
	}
}

// The generated script is valid POSIX sh, hands its baked values to the
// tool at the dump level (the environment wins over them), prefers the
// copied tool and falls back to the native one.
func TestGeneratedScriptRuns(t *testing.T) {
	storage := t.TempDir()
	native := fakeTool(t)
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": storage, "CONTAINER_REGISTRY_NAMESPACE": "it's", "CONTAINER_REGISTRY_TOOL": native})
	if err == nil {
		t.Fatal("namespace with a quote accepted")
	}
	c, err = config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": storage, "CONTAINER_REGISTRY_TAG_STRATEGY": "sha latest", "CONTAINER_REGISTRY_TOOL": native,
		"DEPLOY_DIR_IMAGES": "/srv/it's here/images"})
	if err != nil {
		t.Fatal(err)
	}
	copyTool := filepath.Join(t.TempDir(), "ocireg-tool")
	bakedOut := filepath.Join(t.TempDir(), "baked")
	writeFile(t, copyTool, "#!/bin/sh\nprintf '%s' \"$CONTAINER_REGISTRY_BAKED\" > "+shellquote.Quote(bakedOut)+"\necho \"copy $CONTAINER_REGISTRY_URL|$CONTAINER_REGISTRY_SCRIPT\" \"$@\"\n")
	os.Chmod(copyTool, 0o755)
	if _, err := Generate(c, copyTool, time.Now()); err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) string {
		cmd := exec.Command("sh", c.Script(), "push", "a b")
		cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	load := func(env ...string) *config.Config {
		t.Helper()
		baked, err := os.ReadFile(bakedOut)
		if err != nil {
			t.Fatal(err)
		}
		got, err := config.Load(config.Sources{Environ: append([]string{config.BakedVar + "=" + string(baked)}, env...)})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := "copy |" + c.Script() + " push a b"
	if got := run(); got != want {
		t.Errorf("baked run = %q, want %q (baked values stay out of the environment)", got, want)
	}
	if got := load(); strings.Join(got.TagStrategy, " ") != "sha latest" || got.URL != "localhost:5000" || got.DeployDirImages != "/srv/it's here/images" {
		t.Errorf("baked values: strategy %q URL %q deploy %q", got.TagStrategy, got.URL, got.DeployDirImages)
	}
	run("CONTAINER_REGISTRY_URL=localhost:5001")
	if got := load("CONTAINER_REGISTRY_URL=localhost:5001"); got.URL != "localhost:5001" || got.Get("CONTAINER_REGISTRY_URL").Level != config.LevelEnv {
		t.Errorf("environment did not win: %q", got.URL)
	}
	os.Remove(c.ToolCopy())
	if got := run(); got != "fake tool push a b" {
		t.Errorf("fallback to the native tool: %q", got)
	}
	if out, err := exec.Command("sh", "-n", c.Script()).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v %s", err, out)
	}
}

func TestGenerateReportsUncoveredSANs(t *testing.T) {
	storage := t.TempDir()
	c, _ := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": storage, "CONTAINER_REGISTRY_SECURE": "1"})
	if _, err := Generate(c, fakeTool(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	c, _ = config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": storage, "CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_URL": "buildhost:5000"})
	res, err := Generate(c, fakeTool(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "DNS:buildhost") {
		t.Errorf("warnings = %v", res.Warnings)
	}
}

// The backend's ca= file is checked at generate: a regular file of PEM
// certificates within the limit, never a device or FIFO read without end.
func TestGenerateChecksBackendCA(t *testing.T) {
	dir := t.TempDir()
	// A CA certificate to point at: the one a secure generate makes.
	sc, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": filepath.Join(dir, "pki-src"), "CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_PASSWORD": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(sc, fakeTool(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	writeFile(t, big, "")
	if err := os.Truncate(big, config.MaxBackendCABytes+1); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "hello\n")
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	gen := func(ca string) error {
		c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": filepath.Join(dir, "s"),
			"CONTAINER_REGISTRY_BACKEND": "s3://reg/p?endpoint=https://s3.lab:8333&ca=" + ca})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := Generate(c, fakeTool(t), time.Now()); done <- err }()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("generate with ca=%s: no answer after 5s", ca)
			return nil
		}
	}
	if err := gen(sc.CACert()); err != nil {
		t.Errorf("a CA certificate: %v", err)
	}
	for _, tc := range []struct{ ca, want string }{
		{"/dev/zero", "a device"},
		{fifo, "a FIFO"},
		{big, "more than the limit of 1 MiB"},
		{notPEM, "no PEM certificate"},
		{filepath.Join(dir, "missing.pem"), "no such file"},
	} {
		err := gen(tc.ca)
		if err == nil || !strings.Contains(err.Error(), "CONTAINER_REGISTRY_BACKEND") || !strings.Contains(err.Error(), "ca="+tc.ca) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ca=%s: %v, want %q naming the variable and file", tc.ca, err, tc.want)
		}
	}
}
