package tests

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// Podman, as a target would, pulls both architectures of an image pushed
// to the secure registry, configured only by the files `ocireg-tool target
// oci` and `target ca` generate: the registries.conf.d drop-in (short-name
// search registry), the certs.d CA and the auth.json. skopeo proves the
// same files with its own flags.
func TestPodmanPullsWithGeneratedTargetConfig(t *testing.T) {
	podman := testtool.Need(t, "podman")
	testtool.Need(t, "skopeo")
	root := filepath.Join(t.TempDir(), "images")
	if _, err := sample.WriteTree(root, sample.DefaultBuilds()); err != nil {
		t.Fatal(err)
	}
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SECURE": "1"})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push")

	// The target reaches the host at 127.0.0.1 here (a QEMU target would
	// use 10.0.2.2); the server certificate covers both.
	target := "127.0.0.1:" + e.Port
	pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
	if err != nil {
		t.Fatal(err)
	}
	auth := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, target, base64.StdEncoding.EncodeToString([]byte("yocto:"+strings.TrimSpace(string(pw)))))
	authfile := writeFile(t, t.TempDir(), "auth.json", auth, 0o600)
	dump := filepath.Join(t.TempDir(), "env.dump")
	if err := os.WriteFile(dump, []byte(DumpText(map[string]string{
		"CONTAINER_REGISTRY_URL":        e.URL,
		"CONTAINER_REGISTRY_STORAGE":    e.Storage,
		"CONTAINER_REGISTRY_SECURE":     "1",
		"CONTAINER_REGISTRY_TARGET_URL": target,
		"CONTAINER_REGISTRY_AUTHFILE":   authfile,
	})), 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs := t.TempDir()
	for _, kind := range []string{"oci", "ca"} {
		if r := RunTool(t, nil, "target", kind, "--env-dump", dump, "--dest", rootfs); r.Code != 0 {
			t.Fatalf("target %s: %s", kind, r.Out())
		}
	}
	regConf := filepath.Join(rootfs, "etc/containers/registries.conf.d/50-custom-registry.conf")
	certDir := filepath.Join(rootfs, "etc/containers/certs.d", target)
	authJSON := filepath.Join(rootfs, "etc/containers/auth.json")

	// podman wants a short run root.
	store, err := os.MkdirTemp("/tmp", "pm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(store) })
	run := func(args ...string) (string, error) {
		base := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
			"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
		cmd := exec.Command(podman, append(base, args...)...)
		cmd.Env = append(baseEnv(),
			"CONTAINERS_REGISTRIES_CONF="+regConf,
			"REGISTRY_AUTH_FILE="+authJSON,
			"XDG_RUNTIME_DIR="+filepath.Join(store, "xdg"),
			"TMPDIR="+store,
		)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, arch := range []struct{ pull, config string }{{"arm64", "aarch64"}, {"amd64", "x86_64"}} {
		// A short name: the drop-in's search registry resolves it.
		out, err := run("pull", "--arch", arch.pull, "--cert-dir", certDir, "yocto/container-base:latest")
		if err != nil {
			t.Fatalf("podman pull --arch %s: %v\n%s", arch.pull, err, out)
		}
		out, err = run("image", "inspect", "--format", "{{.Architecture}}", target+"/yocto/container-base:latest")
		if err != nil || strings.TrimSpace(out) != arch.config {
			t.Errorf("pulled architecture = %q (%v), want %s", strings.TrimSpace(out), err, arch.config)
		}
	}

	// Without the CA, podman refuses the registry: the certs.d file is what
	// made it trusted.
	if out, err := run("pull", "--arch", "arm64", "--cert-dir", t.TempDir(), target+"/yocto/app-server:latest"); err == nil {
		t.Errorf("podman pulled without the generated CA:\n%s", out)
	}

	// skopeo with the same three files.
	out, err := exec.Command("skopeo", "--registries-conf", regConf, "inspect", "--raw",
		"--cert-dir", certDir, "--authfile", authJSON, "docker://"+target+"/yocto/app-server:latest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"arm64"`) || !strings.Contains(string(out), `"amd64"`) {
		t.Errorf("skopeo with the generated files: %v\n%s", err, out)
	}
}
