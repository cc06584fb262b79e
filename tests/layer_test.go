package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

const layerDir = "../meta-layer"

// TestLayerFiles checks that every file of the "Files" table of
// meta-virtualization's container-registry documentation, and
// the rest of what the layer promises, exists.
func TestLayerFiles(t *testing.T) {
	recipes := filepath.Join(layerDir, "recipes-containers", "container-registry")
	files := []string{
		// The "Files" table of the container-registry documentation.
		filepath.Join(recipes, "container-registry-index.bb"),
		filepath.Join(recipes, "container-registry-populate.bb"),
		filepath.Join(recipes, "container-registry-ca.bb"),
		filepath.Join(recipes, "container-oci-registry-config.bb"),
		filepath.Join(recipes, "docker-registry-config.bb"),
		filepath.Join(recipes, "files", "container-registry-dev.yml"),
		filepath.Join(recipes, "files", "container-registry-secure.yml"),
		// The layer around them.
		filepath.Join(layerDir, "conf", "layer.conf"),
		filepath.Join(layerDir, "README.md"),
		filepath.Join(layerDir, "classes", "container-registry.bbclass"),
		filepath.Join(layerDir, "classes", "oci-image-labels.bbclass"),
		filepath.Join(layerDir, "classes", "container-registry-policy.bbclass"),
		filepath.Join(layerDir, "dynamic-layers", "virtualization-layer", "recipes-containers", "container-host-config", "container-host-config.bbappend"),
		filepath.Join(layerDir, "conf", "distro", "include", "container-registry.conf"),
		filepath.Join(layerDir, "recipes-containers", "ocireg-tool", "ocireg-tool-go-mods.inc"),
		filepath.Join(layerDir, "recipes-containers", "ocireg-tool", "ocireg-tool-licenses.inc"),
	}
	tool, _ := filepath.Glob(filepath.Join(layerDir, "recipes-containers", "ocireg-tool", "ocireg-tool_*.bb"))
	if len(tool) != 1 {
		t.Errorf("want one ocireg-tool_<version>.bb, found %v", tool)
	}
	for _, f := range append(files, tool...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("missing: %v", err)
			continue
		}
		if (strings.HasSuffix(f, ".bb") || strings.HasSuffix(f, ".bbappend") || strings.HasSuffix(f, ".bbclass") || strings.HasSuffix(f, ".conf")) &&
			!strings.HasPrefix(string(data), "# SPDX-License-Identifier: ") {
			t.Errorf("%s: first line must be the SPDX line", f)
		}
	}
}

var assignRe = regexp.MustCompile(`(?m)^([A-Za-z0-9_-]+) \?= "([^"\n]*)"$`)

// classDefaults reads the `VAR ?= "value"` lines of a class.
func classDefaults(t *testing.T, name string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(layerDir, "classes", name))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range assignRe.FindAllStringSubmatch(string(data), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// bitbakeOnly are class variables the tool does not default: where the tool
// is and how the class talks to it, and what container-registry-populate's
// do_promote_registry and do_export_registry turn into command-line
// arguments of promote and export.
var bitbakeOnly = map[string]bool{
	"CONTAINER_REGISTRY_TOOL":                true,
	"CONTAINER_REGISTRY_TOOL_DEPENDS":        true,
	"CONTAINER_REGISTRY_ENV_DUMP":            true,
	"CONTAINER_REGISTRY_DUMP_VARS":           true,
	"CONTAINER_REGISTRY_TASKS":               true,
	"CONTAINER_REGISTRY_RELEASE_IMAGES":      true,
	"CONTAINER_REGISTRY_RELEASE_TAG_PATTERN": true,
	"CONTAINER_REGISTRY_PROMOTE_TO":          true,
	"CONTAINER_REGISTRY_PROMOTE_CA_FILE":     true,
	"CONTAINER_REGISTRY_PROMOTE_INSECURE":    true,
	"CONTAINER_REGISTRY_EXPORT_FILE":         true,
	"CONTAINER_REGISTRY_EXPORT_SINCE":        true,
}

// TestClassDefaultsMatchTool reads the class and config.ClassDefaults() and
// compares them both ways; it also checks that the env dump carries every
// variable the tool reads and that every variable is documented.
func TestClassDefaultsMatchTool(t *testing.T) {
	class := classDefaults(t, "container-registry.bbclass")
	raw, _ := os.ReadFile(filepath.Join(layerDir, "classes", "container-registry.bbclass"))
	text := string(raw)
	readme, _ := os.ReadFile(filepath.Join(layerDir, "README.md"))
	for name, want := range config.ClassDefaults() {
		got, ok := class[name]
		switch {
		case !ok:
			t.Errorf("%s: not declared with ?= in the class (tool default %q)", name, want)
		case got != want:
			t.Errorf("%s: class default %q, tool default %q", name, got, want)
		}
		if !strings.Contains(text, name+"[doc] = ") {
			t.Errorf("%s: no [doc] flag in the class", name)
		}
		if !strings.Contains(string(readme), name) {
			t.Errorf("%s: not documented in meta-layer/README.md", name)
		}
	}
	for name := range class {
		if _, ok := config.ClassDefaults()[name]; !ok && !bitbakeOnly[name] {
			t.Errorf("%s: declared by the class but unknown to the tool (add it to config.ClassDefaults())", name)
		}
	}
	dump := strings.Fields(strings.ReplaceAll(dumpVars(t, text), "\\", " "))
	have := map[string]bool{}
	for _, v := range dump {
		have[v] = true
	}
	for _, name := range append(sortedKeys(config.ClassDefaults()), "TOPDIR", "DEPLOY_DIR", "DEPLOY_DIR_IMAGE", "MACHINE", "TARGET_ARCH", "PV", "CONTAINER_REGISTRY_TOOL", "CONTAINER_REGISTRY_PASSWORD") {
		if !have[name] {
			t.Errorf("%s: missing from CONTAINER_REGISTRY_DUMP_VARS", name)
		}
	}
}

func dumpVars(t *testing.T, class string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)CONTAINER_REGISTRY_DUMP_VARS \?= "(.*?)"\n`).FindStringSubmatch(class)
	if m == nil {
		t.Fatal("CONTAINER_REGISTRY_DUMP_VARS not found in the class")
	}
	return m[1]
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// exampleConfig is the configuration the documented example files are
// rendered for: the class defaults with a fixed storage directory.
func exampleConfig(t *testing.T, vars config.Vars) *config.Config {
	t.Helper()
	base := config.Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/container-registry"}
	c, err := config.FromVars(base.Overlay(vars))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExampleRegistryConfigs keeps files/container-registry-{dev,secure}.yml
// identical to what the tool renders for the default development (HTTP) and
// secure (TLS + htpasswd) settings with storage /srv/container-registry.
// UPDATE_LAYER_FILES=1 rewrites them.
func TestExampleRegistryConfigs(t *testing.T) {
	for file, vars := range map[string]config.Vars{
		"container-registry-dev.yml":    {"CONTAINER_REGISTRY_INSECURE": "1"},
		"container-registry-secure.yml": {"CONTAINER_REGISTRY_SECURE": "1"},
	} {
		want, err := generator.RegistryConfigYAML(exampleConfig(t, vars))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(layerDir, "recipes-containers", "container-registry", "files", file)
		if os.Getenv("UPDATE_LAYER_FILES") == "1" {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the tool's rendering; run UPDATE_LAYER_FILES=1 go test ./tests -run TestExampleRegistryConfigs\n--- tool renders:\n%s", file, want)
		}
	}
}

// TestClassEnvDumpRoundTrip runs the class's container_registry_write_env
// in python3 with a stand-in datastore and reads the dump back with the
// tool's reader: awkward values must survive.
func TestClassEnvDumpRoundTrip(t *testing.T) {
	py := testtool.Need(t, "python3")
	raw, err := os.ReadFile(filepath.Join(layerDir, "classes", "container-registry.bbclass"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\npython container_registry_write_env\(\) \{\n(.*?)\n\}\n`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("container_registry_write_env not found in the class")
	}
	values := map[string]string{
		"CONTAINER_REGISTRY_URL":          "localhost:5000",
		"CONTAINER_REGISTRY_TAG_STRATEGY": "sha branch latest",
		"CONTAINER_REGISTRY_CERT_SAN":     "DNS:myhost.local,IP:192.168.1.100",
		"DOCKER_OCI_RUNTIMES":             `{"vxn": {"path": "/usr/bin/vxn-oci-runtime"}}`,
		"CONTAINER_REGISTRY_STORAGE":      "/data/a b/$HOME/${TOPDIR}/x=y #z",
		"OCI_IMAGE_BRANCH":                "it's `quoted`",
		"PV":                              "line one\nline two \n\nlast",
		"TOPDIR":                          `C:\path\with\backslashes`,
		"CONTAINER_REGISTRY_AUTH":         "",
	}
	dump := filepath.Join(t.TempDir(), "container-registry.env")
	var names []string
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	script := "import json, os, sys\n" +
		"values = json.loads(sys.argv[1])\n" +
		"class D:\n" +
		"    def getVar(self, name):\n" +
		"        if name == 'CONTAINER_REGISTRY_ENV_DUMP': return sys.argv[2]\n" +
		"        if name == 'CONTAINER_REGISTRY_DUMP_VARS': return ' '.join(list(values) + ['UNSET_VAR'])\n" +
		"        return values.get(name)\n" +
		"class BB:\n" +
		"    class utils:\n" +
		"        mkdirhier = staticmethod(lambda p: os.makedirs(p, exist_ok=True))\n" +
		"d, bb = D(), BB()\n" +
		"def container_registry_write_env(d):\n" + string(m[1]) + "\n" +
		"container_registry_write_env(d)\n"
	js, _ := jsonMarshal(values)
	out, err := exec.Command(py, "-c", script, js, dump).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	st, err := os.Stat(dump)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("dump mode %o, want 600 (it may hold CONTAINER_REGISTRY_PASSWORD)", st.Mode().Perm())
	}
	got, err := config.ReadDump(dump)
	if err != nil {
		data, _ := os.ReadFile(dump)
		t.Fatalf("%v\n%s", err, data)
	}
	for _, k := range names {
		if got[k] != values[k] {
			t.Errorf("%s: wrote %q, read back %q", k, values[k], got[k])
		}
	}
	if _, ok := got["UNSET_VAR"]; ok {
		t.Errorf("unset variables must be left out")
	}
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
