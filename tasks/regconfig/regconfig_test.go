package regconfig

import (
	"os"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/generator/config"
)

// The generated YAML bakes the port and mode; the environment wins.
func TestLoadConfigOverrides(t *testing.T) {
	dir := t.TempDir()
	gen, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": dir, "CONTAINER_REGISTRY_URL": "localhost:5000", "CONTAINER_REGISTRY_SECURE": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if wrote, err := EnsureFile(gen); err != nil || !wrote {
		t.Fatalf("EnsureFile: %v %v", wrote, err)
	}
	cfg, adj, err := Load(gen)
	if err != nil {
		t.Fatal(err)
	}
	if len(adj) != 0 || cfg.HTTP.Addr != ":5000" || cfg.HTTP.TLS.MinimumTLS != "tls1.2" || cfg.Auth["htpasswd"] == nil || cfg.HTTP.Secret == "" {
		t.Fatalf("as generated: adj %v, cfg %+v", adj, cfg.HTTP)
	}
	if st, err := os.Stat(gen.SecretFile()); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v", err)
	}
	secret := cfg.HTTP.Secret

	// Another port and TLS-only, insecure: same YAML.
	run, _ := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": dir, "CONTAINER_REGISTRY_URL": "localhost:5001", "CONTAINER_REGISTRY_INSECURE": "1"})
	cfg, adj, err = Load(run)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != ":5001" || cfg.HTTP.TLS.Certificate != "" || cfg.Auth["htpasswd"] != nil || len(adj) != 3 {
		t.Fatalf("overridden: adj %v, addr %s, tls %+v, auth %v", adj, cfg.HTTP.Addr, cfg.HTTP.TLS, cfg.Auth)
	}
	if cfg.HTTP.Secret != secret {
		t.Fatalf("http.secret changed between loads")
	}
}

// An in-memory blob descriptor cache goes only in front of filesystem
// storage, where it outlives the files it describes.
func TestDropMemoryCache(t *testing.T) {
	for _, tc := range []struct {
		storage string
		dropped bool
	}{
		{"storage:\n  filesystem:\n    rootdirectory: /srv/data\n  cache:\n    blobdescriptor: inmemory\n", true},
		{"storage:\n  filesystem:\n    rootdirectory: /srv/data\n  cache:\n    layerinfo: inmemory\n", true},
		{"storage:\n  filesystem:\n    rootdirectory: /srv/data\n  cache:\n    blobdescriptor: redis\n", false},
		{"storage:\n  inmemory:\n  cache:\n    blobdescriptor: inmemory\n", false},
	} {
		cfg, err := parseConfig([]byte("version: 0.1\n" + tc.storage))
		if err != nil {
			t.Fatal(err)
		}
		adj := dropMemoryCache(cfg)
		_, kept := cfg.Storage["cache"]
		if kept == tc.dropped || (adj != "") != tc.dropped {
			t.Errorf("%q: cache kept %v, adjustment %q; want dropped %v", tc.storage, kept, adj, tc.dropped)
		}
	}
}
