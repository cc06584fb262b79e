// Package testcfg builds tool configurations over scratch storage for
// tests: a fresh storage directory, a free loopback port and a
// registry-config.yml the test writes. Test-only; nothing outside tests
// imports it.
package testcfg

import (
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// Secure is secure mode with auth off (TLS only): the variables a test
// passes to WithYAML to check TLS settings without a password.
var Secure = config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"}

// WithYAML returns a tool configuration over a fresh storage directory on a
// free loopback port, whose registry-config.yml is "version: 0.1" followed
// by yml (plus filesystem storage under the data directory when yml has no
// storage section). CONTAINER_REGISTRY_INSECURE=1 unless vars asks for
// secure mode; vars win over these defaults.
func WithYAML(t testing.TB, vars config.Vars, yml string) *config.Config {
	t.Helper()
	all := config.Vars{
		"CONTAINER_REGISTRY_STORAGE":  t.TempDir(),
		"CONTAINER_REGISTRY_URL":      "127.0.0.1:" + FreePort(t),
		"CONTAINER_REGISTRY_INSECURE": "1",
	}
	if vars["CONTAINER_REGISTRY_SECURE"] == "1" {
		all["CONTAINER_REGISTRY_INSECURE"] = "0"
	}
	maps.Copy(all, vars)
	c, err := config.FromVars(all)
	if err != nil {
		t.Fatal(err)
	}
	text := "version: 0.1\n" + yml
	if !strings.HasPrefix(yml, "storage:") && !strings.Contains(yml, "\nstorage:") {
		text += "storage:\n  filesystem:\n    rootdirectory: " + strconv.Quote(c.DataDir()) + "\n"
	}
	if err := os.WriteFile(c.RegistryConfig(), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// Target is the registry.Target of an insecure registry at host (as
// host:port), over a fresh storage directory, without credentials.
func Target(t testing.TB, host string) *registry.Target {
	t.Helper()
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_URL": host, "CONTAINER_REGISTRY_STORAGE": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := registry.New(c, "container-registry.sh", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}
