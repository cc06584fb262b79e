package regconfig

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/ocireg-tool/ocireg-tool/config"
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

// Where the registry listens: CONTAINER_REGISTRY_LISTEN, else the host of
// http.addr, else loopback for a loopback URL that targets reach through
// the host's loopback, else every interface.
func TestListenAddrs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vars     config.Vars
		addr     string // http.addr of the file
		want     []string
		loopback bool
		why      string
	}{
		{"localhost", nil, ":5000", []string{"127.0.0.1:5000", "[::1]:5000"}, true, "loopback URL"},
		{"127.0.0.2", config.Vars{"CONTAINER_REGISTRY_URL": "127.0.0.2:5000"}, ":5000", []string{"127.0.0.1:5000", "[::1]:5000", "127.0.0.2:5000"}, true, "loopback URL"},
		{"explicit QEMU target", config.Vars{"CONTAINER_REGISTRY_TARGET_URL": "10.0.2.2:5000"}, ":5000", []string{"127.0.0.1:5000", "[::1]:5000"}, true, "loopback URL"},
		{"host address", config.Vars{"CONTAINER_REGISTRY_URL": "192.0.2.10:5000"}, ":5000", []string{":5000"}, false, "default"},
		{"targets on the network", config.Vars{"CONTAINER_REGISTRY_TARGET_URL": "192.0.2.10:5000"}, ":5000", []string{":5000"}, false, "default"},
		{"listen all", config.Vars{"CONTAINER_REGISTRY_LISTEN": "0.0.0.0"}, ":5000", []string{"0.0.0.0:5000"}, false, "CONTAINER_REGISTRY_LISTEN"},
		{"listen ::", config.Vars{"CONTAINER_REGISTRY_LISTEN": "[::]"}, "127.0.0.1:5000", []string{"[::]:5000"}, false, "CONTAINER_REGISTRY_LISTEN"},
		{"listen loopback", config.Vars{"CONTAINER_REGISTRY_LISTEN": "::1", "CONTAINER_REGISTRY_URL": "192.0.2.10:5000"}, ":5000", []string{"[::1]:5000"}, true, "CONTAINER_REGISTRY_LISTEN"},
		{"file host", nil, "192.0.2.20:5000", []string{"192.0.2.20:5000"}, false, "http.addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_URL": "localhost:5000"}
			c, err := config.FromVars(v.Overlay(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseConfig([]byte("version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: " + tc.addr + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			l := ListenAddrs(c, cfg)
			// localhost may also resolve to addresses of its own (all
			// loopback): the expected ones come first.
			if len(l.Addrs) < len(tc.want) || !slices.Equal(l.Addrs[:len(tc.want)], tc.want) || l.Loopback != tc.loopback || l.Why != tc.why {
				t.Errorf("ListenAddrs = %+v, want %v loopback %v why %q", l, tc.want, tc.loopback, tc.why)
			}
		})
	}
	if _, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_LISTEN": "everywhere"}); err == nil {
		t.Errorf("CONTAINER_REGISTRY_LISTEN=everywhere accepted")
	}
}

// TestReadOnly: storage.maintenance.readonly.enabled as distribution's
// parser leaves it.
func TestReadOnly(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want bool
	}{
		{"version: 0.1\nstorage:\n  inmemory: {}\n", false},
		{"version: 0.1\nstorage:\n  inmemory: {}\n  maintenance:\n    readonly:\n      enabled: false\n", false},
		{"version: 0.1\nstorage:\n  inmemory: {}\n  maintenance:\n    readonly:\n      enabled: true\n", true},
	} {
		cfg, err := configuration.Parse(strings.NewReader(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := ReadOnly(cfg); got != c.want {
			t.Errorf("%q: ReadOnly %v, want %v", c.yaml, got, c.want)
		}
	}
}
