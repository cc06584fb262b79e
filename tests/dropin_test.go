package tests

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// The drop-in contract of meta-virtualization's container-registry.sh,
// through the generated script.

// A mode set in the environment wins over the mode baked into the helper;
// SECURE and INSECURE contradict only within one level.
func TestDropInModeFromEnvironment(t *testing.T) {
	tests := []struct {
		name       string
		baked, env map[string]string
		mode       string // "" : start fails with errText
		errText    string
		note       string
	}{
		{"local.conf of the documentation, SECURE=1 start", map[string]string{"CONTAINER_REGISTRY_INSECURE": "1"}, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"},
			"secure (TLS + auth)", "", "Note: secure mode: CONTAINER_REGISTRY_SECURE=1 from the environment overrides CONTAINER_REGISTRY_INSECURE=1 from the helper script"},
		{"baked insecure, env AUTH=1", map[string]string{"CONTAINER_REGISTRY_INSECURE": "1"}, map[string]string{"CONTAINER_REGISTRY_AUTH": "1"},
			"secure (TLS + auth)", "", "CONTAINER_REGISTRY_AUTH=1 from the environment overrides CONTAINER_REGISTRY_INSECURE=1"},
		{"baked secure, env INSECURE=1", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, map[string]string{"CONTAINER_REGISTRY_INSECURE": "1"},
			"insecure (HTTP)", "", "Note: insecure mode: CONTAINER_REGISTRY_INSECURE=1 from the environment overrides CONTAINER_REGISTRY_SECURE=1 from the helper script"},
		{"baked secure, env SECURE=0", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, map[string]string{"CONTAINER_REGISTRY_SECURE": "0"},
			"insecure (HTTP)", "", ""},
		{"baked secure, env AUTH=0", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, map[string]string{"CONTAINER_REGISTRY_AUTH": "0"},
			"secure (TLS only)", "", ""},
		{"baked TLS only, env AUTH=1", map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"}, map[string]string{"CONTAINER_REGISTRY_AUTH": "1"},
			"secure (TLS + auth)", "", ""},
		{"baked auth, env AUTH=0", map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "1"}, map[string]string{"CONTAINER_REGISTRY_AUTH": "0"},
			"secure (TLS only)", "", ""},
		{"baked insecure, nothing in env", map[string]string{"CONTAINER_REGISTRY_INSECURE": "1"}, nil,
			"insecure (HTTP)", "", ""},
		{"both in the environment", map[string]string{"CONTAINER_REGISTRY_INSECURE": "0"}, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_INSECURE": "1"},
			"", "CONTAINER_REGISTRY_SECURE=1 from the environment and CONTAINER_REGISTRY_INSECURE=1 from the environment contradict each other", ""},
		{"AUTH=1 and INSECURE=1 in the environment", nil, map[string]string{"CONTAINER_REGISTRY_AUTH": "1", "CONTAINER_REGISTRY_INSECURE": "1"},
			"", "contradict each other", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, tt.baked)
			r := e.RunEnv(tt.env, "start")
			if tt.mode == "" {
				if r.Code == 0 || !strings.Contains(r.Stdout, tt.errText) {
					t.Fatalf("start: exit %d, want failure with %q:\n%s", r.Code, tt.errText, r.Out())
				}
				return
			}
			if r.Code != 0 {
				t.Fatalf("start: exit %d\n%s", r.Code, r.Out())
			}
			scheme := "http://"
			if strings.HasPrefix(tt.mode, "secure") {
				scheme = "https://"
			}
			wantOut(t, r, "start", "Mode:    "+tt.mode, "URL:     "+scheme+e.URL, "started")
			if tt.note != "" {
				wantOut(t, r, "start", tt.note)
			} else if strings.Contains(r.Stdout, "Note: ") {
				t.Errorf("start: unexpected note:\n%s", r.Stdout)
			}
			// Every later command speaks the same mode.
			for _, cmd := range [][]string{{"status"}, {"list"}, {"info"}} {
				r := e.RunEnv(tt.env, cmd...)
				if r.Code != 0 {
					t.Errorf("%s: exit %d\n%s", cmd[0], r.Code, r.Out())
				}
			}
			wantOut(t, e.RunEnv(tt.env, "status"), "status", "Mode:    "+tt.mode, "healthy")
			if r := e.RunEnv(tt.env, "stop"); r.Code != 0 {
				t.Errorf("stop: %s", r.Out())
			}
		})
	}
}

// loopbackName is a host name that resolves to a loopback address here:
// the machine's own name when it does (Debian's /etc/hosts), else none.
func loopbackName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	addrs, err := net.LookupHost(h)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return ""
		}
	}
	return h
}

// hostIP is a non-loopback IPv4 address of this machine, else 127.0.0.2.
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.2"
}

// One rule decides the scheme: whatever the URL's host, every command
// reaches the registry `start` brought up, in every mode.
func TestDropInOneSchemeRule(t *testing.T) {
	testtool.Need(t, "skopeo")
	hosts := []string{"localhost", "127.0.0.1", "127.0.0.2", hostIP()}
	if n := loopbackName(); n != "" {
		hosts = append(hosts, n)
	} else {
		t.Logf("no host name resolving to loopback here; 127.0.0.2 and %s stand for a named host", hostIP())
	}
	modes := []struct {
		name string
		vars map[string]string
	}{
		{"default", map[string]string{"CONTAINER_REGISTRY_INSECURE": "0"}},
		{"insecure", map[string]string{"CONTAINER_REGISTRY_INSECURE": "1"}},
		{"secure", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}},
		{"tls-only", map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"}},
	}
	root := deployTree(t)
	layouts, _ := filepath.Glob(filepath.Join(root, "qemuarm64", "container-base*-oci"))
	if len(layouts) == 0 {
		t.Fatal("no container-base layout in the sample tree")
	}
	for _, host := range hosts {
		for _, m := range modes {
			t.Run(host+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				vars := map[string]string{"CONTAINER_REGISTRY_URL": net.JoinHostPort(host, FreePort(t)), "DEPLOY_DIR_IMAGES": root}
				for k, v := range m.vars {
					vars[k] = v
				}
				e := NewEnv(t, vars)
				steps := []struct {
					args []string
					want string
				}{
					{[]string{"start"}, "started"},
					{[]string{"status"}, "healthy"},
					{[]string{"push", "--strategy", "latest"}, "Summary: "},
					{[]string{"import", "oci:" + layouts[0], "imported"}, "Imported "},
					{[]string{"list"}, "yocto/imported: latest"},
					{[]string{"tags", "container-base"}, "latest"},
					{[]string{"catalog"}, `"yocto/container-base"`},
					{[]string{"info"}, e.URL},
					{[]string{"delete", "imported:latest"}, "Deleted successfully"},
					{[]string{"gc", "--yes"}, "Pushes resume"},
					{[]string{"verify"}, ""},
					{[]string{"stop"}, "stopped"},
				}
				for _, s := range steps {
					r := e.Run(s.args...)
					if r.Code != 0 || !strings.Contains(r.Stdout, s.want) {
						t.Fatalf("%s: exit %d, want %q in stdout:\n%s", strings.Join(s.args, " "), r.Code, s.want, r.Out())
					}
				}
			})
		}
	}
}

// The original's words and exit codes: "started", "already running (pid
// N)", "Registry not responding at <url>" before anything else, "not
// found" with the available names.
func TestDropInOutputContract(t *testing.T) {
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "DEPLOY_DIR_IMAGES": root})
	empty := t.TempDir()
	down := "Registry not responding at https://" + e.URL
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"push"}},
		{map[string]string{"DEPLOY_DIR_IMAGES": empty}, []string{"push"}}, // nothing to push
		{nil, []string{"push", "no-such-image"}},
		{nil, []string{"import", "oci:/no/such/layout", "x"}},         // unreadable source
		{nil, []string{"import", "docker://unreachable.invalid/x:1"}}, // unreachable source
		{nil, []string{"list"}},
		{nil, []string{"delete", "container-base:latest"}},
		{nil, []string{"tags", "container-base"}},
	} {
		r := e.RunEnv(c.env, c.args...)
		if r.Code == 0 || !strings.Contains(r.Stdout, down) || !strings.Contains(r.Stdout, e.Script+" start") {
			t.Errorf("%v with the registry down: exit %d, want %q and the start command:\n%s", c.args, r.Code, down, r.Out())
		}
	}

	r := e.Run("start")
	wantOut(t, r, "secure start", "Starting SECURE container registry", "https://"+e.URL, "secure (TLS + auth)", "Registry started (pid ")
	if r.Code != 0 {
		t.Fatalf("start: %s", r.Out())
	}
	r = e.Run("start")
	if r.Code != 0 || !strings.Contains(r.Stdout, "already running (pid ") {
		t.Errorf("second start: exit %d\n%s", r.Code, r.Out())
	}
	r = e.Run("push", "no-such-image")
	if r.Code != 1 || !strings.Contains(r.Stdout, "not found") || !strings.Contains(r.Stdout, "app-server, container-base") {
		t.Errorf("push of an image not deployed: exit %d\n%s", r.Code, r.Out())
	}
	r = e.Run("help")
	for _, w := range []string{"--tag", "--strategy", "start", "stop", "restart", "status", "push", "import", "delete", "gc", "list", "tags", "catalog", "info", "verify", "secure"} {
		if !strings.Contains(r.Stdout, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

// A port held by a registry another storage directory started: start says
// whose it is and both ways out, and fails. restart switches mode and port.
func TestDropInPortHeldAndRestart(t *testing.T) {
	port := FreePort(t)
	url := "localhost:" + port
	a := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_URL": url})
	b := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_URL": url})
	if r := a.Run("start"); r.Code != 0 {
		t.Fatalf("start a: %s", r.Out())
	}
	pid := strings.TrimSpace(strings.SplitN(readFile(t, filepath.Join(a.Storage, "registry-"+port+".pid")), "\n", 2)[0])
	r := b.Run("start")
	if r.Code == 0 {
		t.Fatalf("start b on a held port succeeded:\n%s", r.Out())
	}
	wantOut(t, r, "start on a held port", "port "+port+" is held by another ocireg-tool registry", a.Storage, "insecure (HTTP)", "pid:     "+pid,
		filepath.Join(a.Storage, "container-registry.sh")+" stop", "CONTAINER_REGISTRY_URL=localhost:", b.Script+" start")

	// Same storage, another mode: start points at restart; restart does it.
	r = a.RunEnv(map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, "start")
	if r.Code == 0 || !strings.Contains(r.Stdout, "in insecure (HTTP)") || !strings.Contains(r.Stdout, a.Script+" restart") {
		t.Errorf("start in another mode: exit %d\n%s", r.Code, r.Out())
	}
	r = a.RunEnv(map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, "restart")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Registry stopped") || !strings.Contains(r.Stdout, "https://"+url) {
		t.Fatalf("restart secure: exit %d\n%s", r.Code, r.Out())
	}
	// Same storage, another port.
	other := "localhost:" + FreePort(t)
	r = a.RunEnv(map[string]string{"CONTAINER_REGISTRY_URL": other}, "start")
	if r.Code == 0 || !strings.Contains(r.Stdout, "already runs at https://"+url) || !strings.Contains(r.Stdout, "restart") {
		t.Errorf("start on another port: exit %d\n%s", r.Code, r.Out())
	}
	r = a.RunEnv(map[string]string{"CONTAINER_REGISTRY_URL": other}, "restart")
	if r.Code != 0 || !strings.Contains(r.Stdout, "http://"+other) {
		t.Fatalf("restart on another port: exit %d\n%s", r.Code, r.Out())
	}
	if r := a.RunEnv(map[string]string{"CONTAINER_REGISTRY_URL": other}, "status"); r.Code != 0 {
		t.Errorf("status after restart: %s", r.Out())
	}
	if r := a.RunEnv(map[string]string{"CONTAINER_REGISTRY_URL": other}, "stop"); r.Code != 0 {
		t.Errorf("stop: %s", r.Out())
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
