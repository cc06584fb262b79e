package generator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/golden"
)

// goldenCases are the configurations every template is rendered under.
var goldenCases = []struct {
	name string
	vars config.Vars
}{
	{"default-insecure", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "DOCKER_REGISTRY_INSECURE": "localhost:5000"}},
	{"secure-auth", config.Vars{"CONTAINER_REGISTRY_SECURE": "1"}},
	{"secure-tls-only", config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"}},
	{"custom-sans", config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_URL": "buildhost.lan:5443", "CONTAINER_REGISTRY_CERT_SAN": "DNS:myhost.local,IP:192.168.1.100"}},
	{"docker-runtimes", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "DOCKER_OCI_RUNTIMES": `{"vxn": {"path": "/usr/bin/vxn-oci-runtime"}}`, "DOCKER_DEFAULT_RUNTIME": "vxn"}},
	{"podman-runtime", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "PODMAN_OCI_RUNTIME": "crun", "CONTAINER_REGISTRY_SEARCH_FIRST": "0"}},
	{"authfile", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_AUTHFILE": "testdata/authfile.json", "CONTAINER_REGISTRY_NAMESPACE": "team/yocto"}},
	{"signed", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_SIGN": "1", "CONTAINER_REGISTRY_TARGET_URL": "[fd00::2]:5000"}},
}

const goldenNativeTool = "/srv/yocto/build/tmp/sysroots-components/x86_64/ocireg-tool-native/usr/bin/ocireg-tool"

// goldenConfig builds the case's configuration with a PKI in a temporary
// storage directory (secure cases) and, with signing on, the fixed public
// key of testdata/signing.pub as the signing key's.
func goldenConfig(t *testing.T, vars config.Vars) *config.Config {
	t.Helper()
	all := config.Vars{
		"TOPDIR":                     "/srv/yocto/build",
		"DEPLOY_DIR_IMAGES":          "/srv/yocto/build/tmp/deploy/images",
		"TARGET_ARCH":                "x86_64",
		"CONTAINER_REGISTRY_STORAGE": t.TempDir(),
		"CONTAINER_REGISTRY_TOOL":    goldenNativeTool,
	}
	c, err := config.FromVars(all.Overlay(vars))
	if err != nil {
		t.Fatal(err)
	}
	if c.Secure {
		if _, err := ensurePKI(c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if c.Sign {
		pub, err := os.ReadFile(filepath.Join("testdata", "signing.pub"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(c.SigningPubFile()), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.SigningPubFile(), pub, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// renderAll renders every template for c into one document, with the
// storage path replaced by /STORAGE and certificates by a marker.
func renderAll(t *testing.T, c *config.Config) string {
	t.Helper()
	var doc bytes.Buffer
	add := func(title string, data []byte) {
		fmt.Fprintf(&doc, "==== %s\n%s", title, data)
		if !bytes.HasSuffix(data, []byte("\n")) {
			doc.WriteString("\n")
		}
	}
	data := templateData(c)
	for _, tmpl := range []string{"container-registry.sh.tmpl", "registry-config.yml.tmpl", "help.txt.tmpl"} {
		out, err := Render(tmpl, data)
		if err != nil {
			t.Fatal(err)
		}
		add(tmpl, out)
	}
	kinds := []string{TargetDocker, TargetOCI}
	if c.Secure {
		kinds = append(kinds, TargetCA)
	}
	ca, _ := os.ReadFile(c.CACert())
	for _, kind := range kinds {
		files, err := TargetFiles(c, kind)
		if err != nil {
			t.Fatalf("target %s: %v", kind, err)
		}
		for _, f := range files {
			body := f.Data
			if len(ca) > 0 && bytes.Equal(body, ca) {
				body = []byte("<the CA certificate of the storage directory>\n")
			}
			add(fmt.Sprintf("target %s: %s (%#o)", kind, f.Path, f.Mode), body)
		}
	}
	return strings.ReplaceAll(doc.String(), c.Storage, "/STORAGE")
}

func TestGolden(t *testing.T) {
	old := buildinfo.Version
	buildinfo.Version = "golden"
	defer func() { buildinfo.Version = old }()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			c := goldenConfig(t, tc.vars)
			got := renderAll(t, c)
			golden.Check(t, filepath.Join("testdata", "golden", tc.name+".txt"), got)
		})
	}
}

// Every structured output parses back with an independent parser.
func TestRenderedOutputsParse(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			c := goldenConfig(t, tc.vars)
			yml, err := RegistryConfigYAML(c)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := configuration.Parse(bytes.NewReader(yml))
			if err != nil {
				t.Fatalf("distribution rejects registry-config.yml: %v\n%s", err, yml)
			}
			if cfg.Storage.Type() != "filesystem" || cfg.Storage["filesystem"]["rootdirectory"] != c.DataDir() {
				t.Errorf("storage = %v", cfg.Storage)
			}
			if cfg.HTTP.Addr != ":"+c.Port {
				t.Errorf("http.addr = %q", cfg.HTTP.Addr)
			}
			if d, _ := cfg.Storage["delete"]["enabled"].(bool); !d {
				t.Errorf("delete not enabled: %v", cfg.Storage["delete"])
			}
			if (cfg.HTTP.TLS.Certificate != "") != c.Secure || (c.Secure && cfg.HTTP.TLS.MinimumTLS != "tls1.2") {
				t.Errorf("tls = %+v, secure %v", cfg.HTTP.TLS, c.Secure)
			}
			if _, ok := cfg.Auth["htpasswd"]; ok != c.Auth {
				t.Errorf("auth = %v, want htpasswd %v", cfg.Auth, c.Auth)
			}
			for _, kind := range []string{TargetDocker, TargetOCI} {
				files, err := TargetFiles(c, kind)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					switch {
					case strings.HasSuffix(f.Path, ".json"):
						var v map[string]any
						if err := json.Unmarshal(f.Data, &v); err != nil {
							t.Errorf("%s: invalid JSON: %v", f.Path, err)
						}
					case strings.HasSuffix(f.Path, ".conf"):
						var v map[string]any
						if _, err := toml.Decode(string(f.Data), &v); err != nil {
							t.Errorf("%s: invalid TOML: %v\n%s", f.Path, err, f.Data)
						}
						checkRegistriesConf(t, c, f, v)
					}
				}
			}
		})
	}
}

func checkRegistriesConf(t *testing.T, c *config.Config, f TargetFile, v map[string]any) {
	t.Helper()
	if !strings.HasSuffix(f.Path, "50-custom-registry.conf") {
		return
	}
	regs, _ := v["registry"].([]map[string]any)
	if len(regs) != 1 || regs[0]["location"] != c.TargetURL || regs[0]["insecure"] != (c.Insecure && !c.Secure) {
		t.Errorf("[[registry]] = %v", v["registry"])
	}
	search, _ := v["unqualified-search-registries"].([]any)
	if c.SearchFirst != (len(search) == 1 && search[0] == c.TargetURL) {
		t.Errorf("unqualified-search-registries = %v, search first %v", search, c.SearchFirst)
	}
}

func TestDockerDaemonJSON(t *testing.T) {
	tests := []struct {
		name string
		vars config.Vars
		want map[string]any
	}{
		{"insecure from URL", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1"}, map[string]any{"insecure-registries": []any{"10.0.2.2:5000"}}},
		{"explicit list translated", config.Vars{"DOCKER_REGISTRY_INSECURE": "localhost:5000 other.lan:5000"}, map[string]any{"insecure-registries": []any{"10.0.2.2:5000", "other.lan:5000"}}},
		{"target URL wins", config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_TARGET_URL": "host.lan:5000"}, map[string]any{"insecure-registries": []any{"host.lan:5000"}}},
		{"runtimes", config.Vars{"DOCKER_OCI_RUNTIMES": `{"vxn": {"path": "/usr/bin/vxn"}}`, "DOCKER_DEFAULT_RUNTIME": "vxn"},
			map[string]any{"runtimes": map[string]any{"vxn": map[string]any{"path": "/usr/bin/vxn"}}, "default-runtime": "vxn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := goldenConfig(t, tt.vars)
			files, err := TargetFiles(c, TargetDocker)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(files[0].Data, &got); err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("daemon.json = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
	c := goldenConfig(t, config.Vars{"DOCKER_OCI_RUNTIMES": `{"vxn": "/usr/bin/vxn"`})
	if _, err := TargetFiles(c, TargetDocker); err == nil || !strings.Contains(err.Error(), "DOCKER_OCI_RUNTIMES") {
		t.Errorf("invalid runtimes JSON: %v", err)
	}
	c = goldenConfig(t, config.Vars{"DOCKER_OCI_RUNTIMES": `{"vxn": "/usr/bin/vxn"}`})
	if _, err := TargetFiles(c, TargetDocker); err == nil || !strings.Contains(err.Error(), `runtime "vxn"`) {
		t.Errorf("runtime not an object: %v", err)
	}
}

func TestTargetInstallModes(t *testing.T) {
	c := goldenConfig(t, config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTHFILE": "testdata/authfile.json", "PODMAN_OCI_RUNTIME": "crun"})
	dest := t.TempDir()
	want := map[string]os.FileMode{
		"etc/docker/daemon.json":                                    0o644,
		"etc/docker/certs.d/10.0.2.2:5000/ca.crt":                   0o644,
		"root/.docker/config.json":                                  0o600,
		"root/.docker":                                              0o700 | os.ModeDir,
		"etc/containers/registries.conf.d/50-custom-registry.conf":  0o644,
		"etc/containers/certs.d/10.0.2.2:5000/ca.crt":               0o644,
		"etc/containers/containers.conf.d/50-oci-runtime.conf":      0o644,
		"etc/containers/auth.json":                                  0o600,
		"usr/local/share/ca-certificates/container-registry-ca.crt": 0o644,
	}
	for _, kind := range []string{TargetDocker, TargetOCI, TargetCA} {
		if _, err := InstallTarget(c, kind, dest); err != nil {
			t.Fatal(err)
		}
	}
	var found []string
	filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dest, p)
		if m, ok := want[rel]; ok {
			if info.Mode() != m {
				t.Errorf("%s mode = %v, want %v", rel, info.Mode(), m)
			}
		}
		if !info.IsDir() {
			found = append(found, rel)
		}
		return nil
	})
	sort.Strings(found)
	if len(found) != len(want)-1 {
		t.Errorf("installed files = %v", found)
	}
	rt, _ := os.ReadFile(filepath.Join(dest, "etc/containers/containers.conf.d/50-oci-runtime.conf"))
	if !strings.Contains(string(rt), `"crun" = ["/usr/bin/crun"]`) {
		t.Errorf("runtime drop-in:\n%s", rt)
	}

	// No CA: the ca payload names the missing file.
	c2 := goldenConfig(t, config.Vars{"CONTAINER_REGISTRY_INSECURE": "1"})
	if _, err := InstallTarget(c2, TargetCA, t.TempDir()); err == nil || !strings.Contains(err.Error(), c2.CACert()) {
		t.Errorf("missing CA: %v", err)
	}
}
