package tests

import (
	"net"
	"slices"
	"strconv"
	"testing"
	"time"
)

// listenAddrs returns the local addresses of the sockets listening on TCP
// port, from /proc/net/tcp{,6} ("0.0.0.0", "::", "127.0.0.1", "::1", ...).
func listenAddrs(t *testing.T, port string) []string {
	t.Helper()
	n, _ := strconv.Atoi(port)
	var out []string
	for _, so := range procSockets() {
		if so.Listening && so.LocalPort == n {
			out = append(out, so.LocalIP.String())
		}
	}
	slices.Sort(out)
	return out
}

// reachable reports whether a TCP connection to host:port opens.
func reachable(host, port string) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// With CONTAINER_REGISTRY_URL=localhost (the default) the registry, which
// lets anyone push and delete in insecure mode, listens on the loopback
// addresses only, and start says so; CONTAINER_REGISTRY_LISTEN opens it to
// the network; a URL naming this host's network address listens on every
// interface.
func TestServerListensOnLoopback(t *testing.T) {
	lan := hostIP()
	if ip := net.ParseIP(lan); ip.IsLoopback() {
		t.Fatalf("this host has no non-loopback IPv4 address to check from")
	}
	e := NewEnv(t, nil)
	r := e.mustRun(t, 0, "start")
	wantOut(t, r, "start", "Listen:  127.0.0.1:"+e.Port, "this host only", "CONTAINER_REGISTRY_LISTEN=::")
	got := listenAddrs(t, e.Port)
	t.Logf("URL %s: listening on %v", e.URL, got)
	for _, a := range got {
		if !net.ParseIP(a).IsLoopback() {
			t.Errorf("URL %s: the registry listens on %s, want loopback only (%v)", e.URL, a, got)
		}
	}
	if reachable(lan, e.Port) {
		t.Errorf("URL %s: the registry answers at %s:%s", e.URL, lan, e.Port)
	}
	for _, h := range []string{"127.0.0.1", "localhost"} {
		if !reachable(h, e.Port) {
			t.Errorf("URL %s: the registry does not answer at %s", e.URL, h)
		}
	}
	e.mustRun(t, 0, "status")

	e.mustRun(t, 0, "stop")
	r = e.RunEnv(map[string]string{"CONTAINER_REGISTRY_LISTEN": "0.0.0.0"}, "start")
	if r.Code != 0 {
		t.Fatalf("start with CONTAINER_REGISTRY_LISTEN=0.0.0.0: %s", r.Out())
	}
	wantOut(t, r, "start with CONTAINER_REGISTRY_LISTEN", "Listen:  all interfaces, port "+e.Port+"\n")
	// Go listens on 0.0.0.0 with a dual-stack socket: "::".
	if got := listenAddrs(t, e.Port); len(got) != 1 || !net.ParseIP(got[0]).IsUnspecified() || !reachable(lan, e.Port) {
		t.Errorf("CONTAINER_REGISTRY_LISTEN=0.0.0.0: listening on %v, reachable at %s: %v", got, lan, reachable(lan, e.Port))
	}
	e.mustRun(t, 0, "stop")

	n := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_URL": net.JoinHostPort(lan, FreePort(t))})
	r = n.mustRun(t, 0, "start")
	wantOut(t, r, "start at "+n.URL, "Listen:  all interfaces, port "+n.Port)
	if !reachable(lan, n.Port) || !reachable("127.0.0.1", n.Port) {
		t.Errorf("URL %s: not reachable on every interface (%v)", n.URL, listenAddrs(t, n.Port))
	}
	n.mustRun(t, 0, "status")
}
