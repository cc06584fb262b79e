package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
)

// serveFor runs Serve with vars over plain HTTP until the test ends and
// returns its host:port.
func serveFor(t *testing.T, vars config.Vars) string {
	t.Helper()
	c := testcfg.WithYAML(t, vars, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, io.Discard) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + c.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			return c.URL
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// status is the status of method path on addr with Host header host.
func status(t *testing.T, method, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeHostCheck (issue 25, item 6): a request naming a host the
// registry is not reached by (DNS rebinding: a web page whose name
// resolves to 127.0.0.1) gets 421 on every path, the API and the browser
// alike; the registry's own names and IP literals pass;
// CONTAINER_REGISTRY_ALLOWED_HOSTS adds names, * turns the check off.
func TestServeHostCheck(t *testing.T) {
	addr := serveFor(t, nil)
	_, port, _ := net.SplitHostPort(addr)
	for _, path := range []string{"/v2/", "/v2/_catalog", "/ui/", "/v2/yocto/x/manifests/latest"} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			code, body := status(t, m, addr, "attacker.example:"+port, path)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "CONTAINER_REGISTRY_ALLOWED_HOSTS") {
				t.Errorf("%s %s for attacker.example: %d %q", m, path, code, body)
			}
		}
	}
	for _, host := range []string{addr, "localhost:" + port, "LOCALHOST.:" + port, "127.0.0.1:" + port, "127.9.9.9", "[::1]:" + port,
		"192.168.7.2:" + port, "10.0.2.2:" + port, "app.localhost", ""} {
		if code, body := status(t, "GET", addr, host, "/v2/"); code != http.StatusOK {
			t.Errorf("GET /v2/ for %q: %d %q", host, code, body)
		}
	}

	addr = serveFor(t, config.Vars{"CONTAINER_REGISTRY_ALLOWED_HOSTS": "reg.lab build-1.lab"})
	if code, _ := status(t, "GET", addr, "reg.lab:5000", "/v2/"); code != http.StatusOK {
		t.Errorf("a name of CONTAINER_REGISTRY_ALLOWED_HOSTS: %d", code)
	}
	if code, _ := status(t, "GET", addr, "attacker.example", "/v2/"); code != http.StatusMisdirectedRequest {
		t.Errorf("another name beside CONTAINER_REGISTRY_ALLOWED_HOSTS: %d", code)
	}
	addr = serveFor(t, config.Vars{"CONTAINER_REGISTRY_ALLOWED_HOSTS": "*"})
	if code, _ := status(t, "GET", addr, "attacker.example", "/v2/"); code != http.StatusOK {
		t.Errorf("with *: %d", code)
	}
}

// TestAllowedHosts: the names come from the URL, the target, the
// certificate's SANs and this host's name.
func TestAllowedHosts(t *testing.T) {
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_URL": "buildhost.lan:5001", "CONTAINER_REGISTRY_TARGET_URL": "reg.board:443",
		"CONTAINER_REGISTRY_CERT_SAN": "DNS:alias.lan,IP:192.0.2.1", "CONTAINER_REGISTRY_STORAGE": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &configuration.Configuration{}
	h := allowedHosts(c, cfg, []string{"127.0.0.1:5001"}, nil)
	for _, ok := range []string{"buildhost.lan:5001", "BuildHost.LAN", "reg.board", "alias.lan", "localhost", "192.0.2.77", "[fe80::1%eth0]:5001"} {
		if !h.allows(ok) {
			t.Errorf("refuses %q (allowed: %v)", ok, h.list())
		}
	}
	for _, bad := range []string{"attacker.example", "buildhost.lan.attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io"} {
		if h.allows(bad) {
			t.Errorf("allows %q", bad)
		}
	}
	if _, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_ALLOWED_HOSTS": "a.lab:5000", "CONTAINER_REGISTRY_STORAGE": t.TempDir()}); err == nil || !strings.Contains(err.Error(), "CONTAINER_REGISTRY_ALLOWED_HOSTS") {
		t.Errorf("a name with a port: %v", err)
	}
}
