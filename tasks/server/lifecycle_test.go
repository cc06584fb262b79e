package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
	"github.com/ocireg-tool/ocireg-tool/tasks/serve"
)

// childEnv marks the test binary started by Start as the registry server:
// then it serves instead of running the tests, as `ocireg-tool serve`
// does. childIgnoreTerm makes that server ignore SIGTERM.
const (
	childEnv        = "OCIREG_SERVER_TEST_CHILD"
	childIgnoreTerm = "OCIREG_SERVER_TEST_IGNORE_TERM"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serveChild())
	}
	os.Exit(m.Run())
}

// serveChild is `ocireg-tool serve` in the test binary.
func serveChild() int {
	sigs := []os.Signal{syscall.SIGTERM, os.Interrupt}
	if os.Getenv(childIgnoreTerm) == "1" {
		signal.Ignore(syscall.SIGTERM)
		sigs = sigs[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	c, err := config.Load(config.Sources{Environ: os.Environ()})
	if err == nil {
		err = serve.Serve(ctx, c, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

// recorder keeps the events of a server task.
type recorder struct{ events.Recorder }

// kinds returns the type names of the events received, in order, and
// forgets them.
func (r *recorder) kinds() []string {
	var out []string
	for _, e := range r.Events() {
		out = append(out, reflect.TypeOf(e).Name())
	}
	r.Reset()
	return out
}

// testConfig is a configuration with a fresh storage directory and a free
// port, plus vars.
func testConfig(t *testing.T, vars config.Vars) *config.Config {
	t.Helper()
	v := config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_URL": "localhost:" + testcfg.FreePort(t),
		"CONTAINER_REGISTRY_INSECURE": "1"}
	c, err := config.FromVars(v.Overlay(vars))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testOptions starts the test binary as the server and records events.
func testOptions(t *testing.T, extraEnv ...string) (Options, *recorder) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	env := append([]string{childEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, extraEnv...)
	return Options{Self: self, Script: "container-registry.sh", Environ: env, Events: rec, ReadyTimeout: 20 * time.Second}, rec
}

// stopAtEnd stops the registry of c when the test ends, whatever happened.
func stopAtEnd(t *testing.T, c *config.Config, o Options) {
	t.Cleanup(func() {
		o.Events = nil
		if _, err := Stop(c, o); err != nil {
			t.Errorf("stop at the end: %v", err)
		}
	})
}

func wantKinds(t *testing.T, what string, rec *recorder, want ...string) {
	t.Helper()
	if got := rec.kinds(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: events %v, want %v", what, got, want)
	}
}

// A registry that never ran: not running, nothing stale, nobody answers.
func TestStatusStopped(t *testing.T) {
	c := testConfig(t, nil)
	o, rec := testOptions(t)
	res, err := Status(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	want := &StatusResult{URL: c.BaseURL(), Mode: "insecure (HTTP)", Storage: c.Storage, Log: runstate.LogFile(c)}
	if !reflect.DeepEqual(res, want) || res.OK() {
		t.Errorf("status = %+v, want %+v", res, want)
	}
	stop, err := Stop(c, o)
	if err != nil || !reflect.DeepEqual(stop, &StopResult{}) {
		t.Errorf("stop = %+v, %v", stop, err)
	}
	wantKinds(t, "status and stop of a stopped registry", rec)
}

// A pid file whose process is gone, or that cannot be read, is stale:
// status names it, stop removes it quietly.
func TestStalePidFile(t *testing.T) {
	c := testConfig(t, nil)
	o, _ := testOptions(t)
	for _, tc := range []struct {
		content string
		pid     int
	}{{"999999\n", 999999}, {"not a pid\n", 0}} {
		if err := os.WriteFile(runstate.PidFile(c), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Status(context.Background(), c, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Running || res.StalePidFile != runstate.PidFile(c) || res.StalePid != tc.pid {
			t.Errorf("%q: status = %+v", tc.content, res)
		}
		stop, err := Stop(c, o)
		if err != nil || stop.Stopped || stop.StalePidFile != runstate.PidFile(c) {
			t.Errorf("%q: stop = %+v, %v", tc.content, stop, err)
		}
		if _, err := os.Stat(runstate.PidFile(c)); !os.IsNotExist(err) {
			t.Errorf("%q: stop left the pid file (%v)", tc.content, err)
		}
	}
}

// start, status, start again, restart, stop, status: each result says what
// happened, and only what happens over time is an event.
func TestLifecycleResults(t *testing.T) {
	c := testConfig(t, nil)
	o, rec := testOptions(t)
	stopAtEnd(t, c, o)
	ctx := context.Background()
	if err := os.WriteFile(runstate.PidFile(c), []byte("999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	start, err := Start(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if start.Already || start.Pid == 0 || !start.Launched || start.Ready <= 0 || !start.WroteConfig ||
		start.StalePidFile != runstate.PidFile(c) || start.StalePid != 999999 || start.Secrets != nil ||
		start.URL != c.BaseURL() || start.Config != c.RegistryConfig() || start.Log != runstate.LogFile(c) {
		t.Errorf("start = %+v", start)
	}
	wantKinds(t, "start", rec, "Launching")

	status, err := Status(ctx, c, o)
	if err != nil || !status.OK() || status.Pid != start.Pid || status.Probe != "" {
		t.Errorf("status = %+v, %v", status, err)
	}
	again, err := Start(ctx, c, o)
	if err != nil || !again.Already || again.Pid != start.Pid || again.Launched || again.WroteConfig {
		t.Errorf("second start = %+v, %v", again, err)
	}
	wantKinds(t, "second start", rec)

	restart, err := Restart(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(restart.Stopped) != 1 || restart.Stopped[0].Pid != start.Pid || !restart.Stopped[0].Stopped ||
		restart.Start.Pid == 0 || restart.Start.Pid == start.Pid {
		t.Errorf("restart = %+v (start %+v)", restart, restart.Start)
	}
	wantKinds(t, "restart", rec, "Stopping", "Stopped", "Launching")

	stop, err := Stop(c, o)
	if err != nil || !reflect.DeepEqual(stop, &StopResult{Stopped: true, Pid: restart.Start.Pid}) {
		t.Errorf("stop = %+v, %v", stop, err)
	}
	wantKinds(t, "stop", rec, "Stopping")
	status, err = Status(ctx, c, o)
	if err != nil || status.Running || status.StalePidFile != "" {
		t.Errorf("status after stop = %+v, %v", status, err)
	}
}

// A server that ignores SIGTERM gets SIGKILL after StopTimeout.
func TestStopKills(t *testing.T) {
	c := testConfig(t, nil)
	o, rec := testOptions(t, childIgnoreTerm+"=1")
	o.StopTimeout = 300 * time.Millisecond
	stopAtEnd(t, c, o)
	start, err := Start(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	rec.kinds()
	stop, err := Stop(c, o)
	if err != nil || !reflect.DeepEqual(stop, &StopResult{Stopped: true, Pid: start.Pid, Killed: true}) {
		t.Fatalf("stop = %+v, %v", stop, err)
	}
	events := rec.Events()
	want := []any{Stopping{Pid: start.Pid}, Killing{Pid: start.Pid, After: 300 * time.Millisecond}}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %+v, want %+v", events, want)
	}
}

// Secure mode: the secrets step runs at start (PKI from generate kept, the
// password made), and status answers over TLS with the credentials.
func TestStartSecure(t *testing.T) {
	c := testConfig(t, config.Vars{"CONTAINER_REGISTRY_INSECURE": "0", "CONTAINER_REGISTRY_SECURE": "1"})
	o, _ := testOptions(t)
	stopAtEnd(t, c, o)
	start, err := Start(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	s := start.Secrets
	if !start.Secure || start.Mode != "secure (TLS + auth)" || s == nil || s.PKI == nil || !s.PKI.CreatedCA ||
		s.Auth == nil || s.Auth.Source != "generated" || s.Auth.PasswordFile != c.PasswordFile() {
		t.Fatalf("start = %+v, secrets %+v", start, s)
	}
	status, err := Status(context.Background(), c, o)
	if err != nil || !status.OK() || !strings.HasPrefix(status.URL, "https://") {
		t.Errorf("status = %+v, %v", status, err)
	}
	again, err := Start(context.Background(), c, o)
	if err != nil || !again.Already || again.Secrets != nil {
		t.Errorf("second start = %+v, %v", again, err)
	}
}

// A start that fails before launching returns what it prepared, and
// launches nothing.
func TestStartPortTaken(t *testing.T) {
	c := testConfig(t, nil)
	l, err := net.Listen("tcp", ":"+c.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o, rec := testOptions(t)
	start, err := Start(context.Background(), c, o)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("err = %v", err)
	}
	if start == nil || !start.WroteConfig || start.Launched || start.Pid != 0 {
		t.Errorf("start = %+v", start)
	}
	wantKinds(t, "failed start", rec)
	if _, err := os.Stat(runstate.PidFile(c)); !os.IsNotExist(err) {
		t.Errorf("failed start left a pid file (%v)", err)
	}
}

// A server that exits while start waits for it: the error says so and
// quotes the log; no pid file stays.
func TestStartServerExits(t *testing.T) {
	c := testConfig(t, nil)
	if _, err := regconfig.EnsureFile(c); err != nil {
		t.Fatal(err)
	}
	o, rec := testOptions(t)
	// The server reads its configuration from the environment; one it
	// cannot parse makes it exit at once.
	o.Environ = append(o.Environ, "CONTAINER_REGISTRY_CA_DAYS=many")
	start, err := Start(context.Background(), c, o)
	if err == nil || !strings.Contains(err.Error(), "registry exited during startup") || !strings.Contains(err.Error(), "Last lines of") {
		t.Fatalf("err = %v", err)
	}
	if start == nil || !start.Launched || start.Pid != 0 {
		t.Errorf("start = %+v", start)
	}
	wantKinds(t, "failed start", rec, "Launching")
	if _, err := os.Stat(runstate.PidFile(c)); !os.IsNotExist(err) {
		t.Errorf("failed start left a pid file (%v)", err)
	}
	if !errors.Is(err, errExited) {
		t.Errorf("err is not errExited: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Storage, "registry-"+c.Port+".log")); err != nil {
		t.Errorf("no log: %v", err)
	}
}
