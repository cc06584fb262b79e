package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/generator/config"
)

// bitbakeBuild is a throw-away build directory using the layer with real
// bitbake and openembedded-core.
type bitbakeBuild struct {
	t       *testing.T
	dir     string
	bitbake string
	oecore  string
}

// TestBitbake runs real bitbake against the layer: parse every recipe,
// `bitbake -e` the index recipe, generate the helper script, and run the
// target packages' do_install, in development and in secure mode. The tool
// is the one TestMain built (CONTAINER_REGISTRY_TOOL), so no Go toolchain is
// built. It needs checkouts: BITBAKE_DIR and OECORE_DIR.
func TestBitbake(t *testing.T) {
	bbDir, oeDir := os.Getenv("BITBAKE_DIR"), os.Getenv("OECORE_DIR")
	if bbDir == "" || oeDir == "" {
		msg := "SKIPPED: real-bitbake layer harness: set BITBAKE_DIR and OECORE_DIR to bitbake and openembedded-core checkouts to run it"
		fmt.Println(msg)
		t.Skip(msg)
	}
	if out, _ := exec.Command("locale", "-a").Output(); !strings.Contains(strings.ToLower(string(out)), "en_us.utf8") {
		t.Fatal("bitbake needs the en_US.UTF-8 locale (Debian: apt-get install locales; enable it in /etc/locale.gen; locale-gen)")
	}
	layer, err := filepath.Abs(layerDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("BITBAKE_BUILD_DIR") // keep the build (and its cache) between runs
	if dir == "" {
		dir = t.TempDir()
	}
	b := &bitbakeBuild{t: t, dir: dir, bitbake: bbDir, oecore: oeDir}
	b.write("conf/bblayers.conf", fmt.Sprintf("BBPATH = \"${TOPDIR}\"\nBBFILES ?= \"\"\nBBLAYERS = \"%s/meta %s\"\n", oeDir, layer))
	storage := filepath.Join(dir, "container-registry")
	base := fmt.Sprintf(`MACHINE = "qemux86-64"
DISTRO = "nodistro"
PACKAGE_CLASSES = "package_ipk"
CONTAINER_REGISTRY_TOOL = "%s"
CONTAINER_REGISTRY_TOOL_DEPENDS = ""
CONTAINER_REGISTRY_URL = "localhost:5000"
CONTAINER_REGISTRY_NAMESPACE = "yocto"
CONTAINER_REGISTRY_TAG_STRATEGY = "sha branch latest"
CONTAINER_REGISTRY_CERT_SAN = "DNS:myhost.local,IP:192.168.1.100"
DOCKER_OCI_RUNTIMES = '{"vxn": {"path": "/usr/bin/vxn-oci-runtime"}}'
BB_NUMBER_THREADS = "2"
# The harness builds nothing native: no uninative shim to download.
INHERIT:remove = "uninative"
PARALLEL_MAKE = "-j 2"
`, toolBin)
	if os.Getuid() == 0 {
		// oe-core's sanity class refuses root; CI containers run as root.
		base += "INHERIT:remove = \"sanity\"\n"
	}

	t.Run("insecure", func(t *testing.T) {
		b.t = t
		b.write("conf/local.conf", base+`CONTAINER_REGISTRY_INSECURE = "1"
DOCKER_REGISTRY_INSECURE = "localhost:5000"
`)
		b.run("-p")
		env := b.env("container-registry-index")
		for k, want := range map[string]string{
			"CONTAINER_REGISTRY_URL":          "localhost:5000",
			"CONTAINER_REGISTRY_TAG_STRATEGY": "sha branch latest",
			"CONTAINER_REGISTRY_STORAGE":      storage,
			"CONTAINER_REGISTRY_USERNAME":     "yocto",
			"DOCKER_OCI_RUNTIMES":             `{"vxn": {"path": "/usr/bin/vxn-oci-runtime"}}`,
		} {
			if env[k] != want {
				t.Errorf("bitbake -e: %s = %q, want %q", k, env[k], want)
			}
		}
		b.run("container-registry-index", "-c", "generate_registry_script")
		script := filepath.Join(storage, "container-registry.sh")
		out, err := exec.Command(script, "help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s help: %v\n%s", script, err, out)
		}
		if !strings.Contains(string(out), "push") {
			t.Errorf("help output: %s", out)
		}
		// Plain `bitbake container-registry-index` only explains; its do_build
		// also runs oe-core's SPDX tasks, which need native tools.
		if os.Getenv("BITBAKE_NO_NATIVE") == "1" {
			b.run("container-registry-index", "-c", "container_registry_help")
		} else {
			b.run("container-registry-index")
		}
		b.install(map[string]string{"docker-registry-config": "docker", "container-oci-registry-config": "oci"})
		b.showImage("docker-registry-config", "etc/docker/daemon.json")
		b.showImage("container-oci-registry-config", "etc/containers/registries.conf.d/50-custom-registry.conf")
	})

	t.Run("secure", func(t *testing.T) {
		b.t = t
		b.write("conf/local.conf", base+`CONTAINER_REGISTRY_SECURE = "1"
`)
		b.run("container-registry-index", "-c", "generate_registry_script")
		for _, f := range []string{"pki/ca.crt", "pki/server.crt", "registry-config.yml"} {
			if _, err := os.Stat(filepath.Join(storage, f)); err != nil {
				t.Errorf("secure generate: %v", err)
			}
		}
		b.install(map[string]string{"container-registry-ca": "ca", "docker-registry-config": "docker", "container-oci-registry-config": "oci"})
		b.showImage("container-registry-ca", "usr/local/share/ca-certificates/container-registry-ca.crt")
		b.showImage("docker-registry-config", "etc/docker/daemon.json")
		b.showImage("container-oci-registry-config", "etc/containers/registries.conf.d/50-custom-registry.conf")
	})
}

// install runs do_install of the recipes (recipe -> target kind). do_install
// needs pseudo-native, built from the network; with BITBAKE_NO_NATIVE=1 the
// command do_install runs is run on each recipe's `bitbake -e` output into
// the same image directory instead.
func (b *bitbakeBuild) install(recipes map[string]string) {
	b.t.Helper()
	names := sortedKeys(recipes)
	if os.Getenv("BITBAKE_NO_NATIVE") != "1" {
		b.run(append(names, "-c", "install")...)
		return
	}
	for _, r := range names {
		env := b.env(r)
		dest := env["D"]
		if dest == "" {
			b.t.Fatalf("%s: no D in bitbake -e", r)
		}
		os.RemoveAll(dest)
		args := []string{"target", recipes[r], "--env-dump", filepath.Join(b.dir, "bitbake-e-"+r+".txt"), "--dest", dest}
		if recipes[r] != "ca" {
			args = append(args, "--skip-ca")
		}
		b.t.Logf("$ ocireg-tool %s   # do_install of %s, BITBAKE_NO_NATIVE=1", strings.Join(args, " "), r)
		out, err := exec.Command(toolBin, args...).CombinedOutput()
		b.t.Logf("%s", out)
		if err != nil {
			b.t.Fatalf("%s: %v", r, err)
		}
	}
}

func (b *bitbakeBuild) write(rel, text string) {
	b.t.Helper()
	p := filepath.Join(b.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// run runs bitbake with args in the build directory, streaming its output
// into the test log, and fails the test when bitbake fails.
func (b *bitbakeBuild) run(args ...string) string {
	b.t.Helper()
	start := time.Now()
	shell := fmt.Sprintf("cd %s && . %s/oe-init-build-env %s >/dev/null && bitbake %s",
		generator.ShellQuote(b.oecore), generator.ShellQuote(b.oecore), generator.ShellQuote(b.dir), shellArgs(args))
	cmd := exec.Command("bash", "-c", shell)
	cmd.Env = append(os.Environ(), "BITBAKEDIR="+b.bitbake, "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var all strings.Builder
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if !strings.HasPrefix(args[0], "-e") {
				b.t.Log(sc.Text())
			}
		}
		close(done)
	}()
	b.t.Logf("$ bitbake %s", strings.Join(args, " "))
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		b.t.Fatalf("bitbake %s: %v (after %s)", strings.Join(args, " "), err, time.Since(start).Round(time.Second))
	}
	return all.String()
}

// env runs `bitbake -e recipe` and reads it with the tool's own reader.
func (b *bitbakeBuild) env(recipe string) config.Vars {
	b.t.Helper()
	out := b.run("-e", recipe)
	p := filepath.Join(b.dir, "bitbake-e-"+recipe+".txt")
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		b.t.Fatal(err)
	}
	vars, err := config.ReadDump(p)
	if err != nil {
		b.t.Fatalf("reading bitbake -e output: %v", err)
	}
	return vars
}

// showImage logs the install tree of recipe and the content of one file.
func (b *bitbakeBuild) showImage(recipe, file string) {
	b.t.Helper()
	matches, _ := filepath.Glob(filepath.Join(b.dir, "tmp", "work", "*", recipe, "*", "image"))
	if len(matches) != 1 {
		b.t.Fatalf("%s: want one image directory, found %v", recipe, matches)
	}
	img := matches[0]
	filepath.Walk(img, func(p string, st os.FileInfo, err error) error {
		if err == nil && !st.IsDir() {
			rel, _ := filepath.Rel(img, p)
			b.t.Logf("%s: %s /%s", recipe, st.Mode(), rel)
		}
		return nil
	})
	data, err := os.ReadFile(filepath.Join(img, file))
	if err != nil {
		b.t.Fatalf("%s: %v", recipe, err)
	}
	b.t.Logf("%s: /%s:\n%s", recipe, file, data)
}

func shellArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = generator.ShellQuote(a)
	}
	return strings.Join(q, " ")
}
