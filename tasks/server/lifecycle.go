package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/generator/config"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Options are what start, stop and status need besides the configuration.
type Options struct {
	// Self is the ocireg-tool binary that `start` runs as `serve`.
	Self string
	// Script names the helper script in hints.
	Script string
	// Environ is the environment handed to the server (secrets removed).
	Environ []string
	// Out receives the messages for the user.
	Out io.Writer
	// ReadyTimeout bounds the wait for /v2/ to answer (default 30s).
	ReadyTimeout time.Duration
	// StopTimeout is how long stop waits after SIGTERM before SIGKILL
	// (default 15s).
	StopTimeout time.Duration
}

func (o *Options) defaults() {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 15 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// StartResult says what Start did.
type StartResult struct {
	Pid     int
	Already bool          // it was already running
	Ready   time.Duration // from launch to the first answer of /v2/
}

// Start launches `ocireg-tool serve` detached (its own session, stdin from
// /dev/null, output to the per-port log file), records its pid and returns
// once /v2/ answers. In secure mode it first makes sure the PKI exists and,
// unless TLS-only, writes auth/htpasswd and auth/password.
func Start(ctx context.Context, c *config.Config, o Options) (*StartResult, error) {
	o.defaults()
	out := o.Out
	if err := os.MkdirAll(c.Storage, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	run := runstate.Check(c)
	if run.Err != nil {
		return nil, run.Err
	}
	if run.Pid != 0 {
		if run.Mode != "" && run.Mode != c.Mode() {
			return nil, fmt.Errorf("Registry already running (pid %d), but in %s at %s; configured now: %s at %s\nRestart it in the configured mode: %s restart",
				run.Pid, run.Mode, run.URL, c.Mode(), c.BaseURL(), o.Script)
		}
		fmt.Fprintf(out, "Registry already running (pid %d)\n", run.Pid)
		fmt.Fprintf(out, "  URL: %s\n", c.BaseURL())
		return &StartResult{Pid: run.Pid, Already: true}, nil
	}
	if others := runstate.Others(c); len(others) > 0 {
		r := others[0]
		return nil, fmt.Errorf("a registry of this storage (%s) already runs at %s (pid %d, %s); configured now: %s\nRestart it on the configured port: %s restart",
			c.Storage, r.URL, r.Pid, r.Mode, c.BaseURL(), o.Script)
	}
	if run.Stale {
		if err := os.Remove(run.File); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("removing stale pid file: %w", err)
		}
		if run.StalePid != 0 {
			fmt.Fprintf(out, "Removed stale pid file %s (pid %d is not the registry any more)\n", run.File, run.StalePid)
		} else {
			fmt.Fprintf(out, "Removed unreadable pid file %s\n", run.File)
		}
	}

	if c.Secure {
		rep, err := generator.EnsurePKI(c, time.Now())
		if err != nil {
			return nil, err
		}
		if rep.CreatedCA {
			fmt.Fprintf(out, "Generated CA and server certificate in %s\n", c.PKIDir())
		} else if rep.CreatedServer {
			fmt.Fprintf(out, "Generated server certificate from the existing CA in %s\n", c.PKIDir())
		}
		if len(rep.Missing) > 0 {
			fmt.Fprintf(out, "Warning: %s does not cover %v; remove server.crt and server.key to issue a new one from the same CA\n", c.ServerCert(), rep.Missing)
		}
		if c.Auth {
			fmt.Fprintf(out, "Setting up authentication...\n")
			rep, err := generator.EnsureAuth(c)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(out, "  User: %s (password: %s)\n", c.Username, rep.Source)
			fmt.Fprintf(out, "  Password saved to: %s\n", c.PasswordFile())
		}
	}
	wrote, err := regconfig.EnsureFile(c)
	if err != nil {
		return nil, err
	}
	if wrote {
		fmt.Fprintf(out, "Wrote %s (none in this storage directory)\n", c.RegistryConfig())
	}
	cfg, _, err := regconfig.Load(c)
	if err != nil {
		return nil, err
	}
	if err := checkPortFree(ctx, c, cfg.HTTP.Addr, o.Script); err != nil {
		return nil, err
	}

	if c.Secure {
		fmt.Fprintf(out, "Starting SECURE container registry...\n")
	} else {
		fmt.Fprintf(out, "Starting container registry...\n")
	}
	fmt.Fprintf(out, "  URL:     %s\n", c.BaseURL())
	fmt.Fprintf(out, "  Mode:    %s\n", c.Mode())
	fmt.Fprintf(out, "  Storage: %s\n", c.Storage)
	fmt.Fprintf(out, "  Config:  %s\n", c.RegistryConfig())
	fmt.Fprintf(out, "  Log:     %s\n", runstate.LogFile(c))
	if c.Secure {
		fmt.Fprintf(out, "  PKI:     %s\n", c.PKIDir())
		fmt.Fprintf(out, "  CA cert: %s\n", c.CACert())
		if c.Auth {
			fmt.Fprintf(out, "  Auth:    %s (user %s)\n", c.AuthDir(), c.Username)
		}
	}

	logf, err := os.OpenFile(runstate.LogFile(c), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s: starting registry on %s\n", time.Now().Format(time.RFC3339), cfg.HTTP.Addr)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()

	cmd := exec.Command(o.Self, "serve")
	cmd.Env = serverEnv(o.Environ, c)
	cmd.Dir = c.Storage
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launching %s serve: %w", o.Self, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := runstate.WritePidFile(c, pid); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}

	fail := func(reason string) error {
		_ = cmd.Process.Kill()
		<-exited
		os.Remove(runstate.PidFile(c))
		return fmt.Errorf("%s\nLast lines of %s:\n%s", reason, runstate.LogFile(c), Tail(runstate.LogFile(c), 20))
	}
	deadline := time.Now().Add(o.ReadyTimeout)
	// Probe often while a healthy server is expected (it answers within
	// tens of milliseconds; start returns as soon as it does), then back
	// off for a slow one.
	interval := 5 * time.Millisecond
	for {
		err := ping(ctx, c, o.Script)
		if err == nil {
			break
		}
		var nr *registry.NotRespondingError
		if !errors.As(err, &nr) {
			return nil, fail(fmt.Sprintf("registry started but /v2/ failed: %v", err))
		}
		select {
		case werr := <-exited:
			os.Remove(runstate.PidFile(c))
			return nil, fmt.Errorf("registry exited during startup (%v)\nLast lines of %s:\n%s", werr, runstate.LogFile(c), Tail(runstate.LogFile(c), 20))
		case <-ctx.Done():
			return nil, fail("interrupted while waiting for the registry")
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return nil, fail(fmt.Sprintf("registry did not answer %s/v2/ within %s", c.BaseURL(), o.ReadyTimeout))
		}
		if time.Since(launched) > time.Second && interval < 200*time.Millisecond {
			interval *= 2
		}
	}
	ready := time.Since(launched)
	// The server lives on in its own session; let go of it.
	_ = cmd.Process.Release()
	fmt.Fprintf(out, "Registry started (pid %d, ready in %s)\n", pid, ready.Round(time.Millisecond))
	if c.Secure {
		fmt.Fprintf(out, "\nTargets need the CA: IMAGE_INSTALL:append = \" container-registry-ca\"\n")
	}
	fmt.Fprintf(out, "Stop it with: %s stop\n", o.Script)
	return &StartResult{Pid: pid, Ready: ready}, nil
}

// serverEnv is the environment of the server: the caller's, without the
// password (the server reads the htpasswd file and needs no secret).
func serverEnv(environ []string, c *config.Config) []string {
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "CONTAINER_REGISTRY_PASSWORD=") || strings.HasPrefix(kv, "CONTAINER_REGISTRY_TOKEN=") {
			continue
		}
		env = append(env, kv)
	}
	// The server must see the effective configuration even when it came
	// from flags or a dump rather than the environment.
	return append(env,
		"CONTAINER_REGISTRY_STORAGE="+c.Storage,
		"CONTAINER_REGISTRY_URL="+c.URL,
		"CONTAINER_REGISTRY_SECURE="+boolStr(c.Secure),
		"CONTAINER_REGISTRY_INSECURE="+boolStr(c.Insecure),
		"CONTAINER_REGISTRY_AUTH="+boolStr(c.Auth),
	)
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// checkPortFree fails with a clear message when something else listens on
// the registry's port: another registry of ours (its storage, mode and pid,
// and both ways out), or another program.
func checkPortFree(ctx context.Context, c *config.Config, addr, script string) error {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return nil
	}
	other := fmt.Sprintf("CONTAINER_REGISTRY_URL=%s %s start", net.JoinHostPort(c.Host, freePortNear(c.Port)), script)
	if h := runstate.PortHolder(c, c.Port); h != nil && h.Storage != c.Storage {
		mode := h.Running.Mode
		if mode == "" {
			mode = "unknown mode"
		}
		return fmt.Errorf("port %s is held by another ocireg-tool registry:\n  storage: %s\n  mode:    %s\n  pid:     %d\n"+
			"It serves that storage, not %s. Either stop it:\n  %s stop\nor start this one on another port:\n  %s",
			c.Port, h.Storage, mode, h.Pid, c.Storage, filepath.Join(h.Storage, "container-registry.sh"), other)
	}
	what := "another program"
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if ping(pctx, c, script) == nil {
		what = "a registry not started from " + c.Storage
	}
	return fmt.Errorf("port %s (CONTAINER_REGISTRY_URL=%s) is already in use by %s: %v\nStop it, or choose another port:\n  %s",
		c.Port, c.URL, what, err, other)
}

// freePortNear returns the first port after port that is free on this
// host, for the hint; port+1 when none is found quickly.
func freePortNear(port string) string {
	n, _ := strconv.Atoi(port)
	for p := n + 1; p < n+50 && p < 65536; p++ {
		if ln, err := net.Listen("tcp", ":"+strconv.Itoa(p)); err == nil {
			ln.Close()
			return strconv.Itoa(p)
		}
	}
	return strconv.Itoa(n + 1)
}

// StopResult says what Stop did.
type StopResult struct {
	Pid    int
	Killed bool // SIGTERM was not enough
}

// Stop sends SIGTERM to the registry of c's port, waits for it to exit
// (SIGKILL after o.StopTimeout) and removes the pid file. A registry that
// is not running is not an error.
func Stop(c *config.Config, o Options) (*StopResult, error) {
	o.defaults()
	out := o.Out
	run := runstate.Check(c)
	if run.Err != nil {
		return nil, run.Err
	}
	if run.Pid == 0 {
		if run.Stale {
			os.Remove(run.File)
		}
		fmt.Fprintf(out, "Registry not running\n")
		return &StopResult{}, nil
	}
	fmt.Fprintf(out, "Stopping container registry (pid %d)...\n", run.Pid)
	res := &StopResult{Pid: run.Pid}
	if err := syscall.Kill(run.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return nil, fmt.Errorf("stopping pid %d: %w", run.Pid, err)
	}
	if !waitGone(c, o.StopTimeout) {
		fmt.Fprintf(out, "  still running after %s, sending SIGKILL\n", o.StopTimeout)
		res.Killed = true
		_ = syscall.Kill(run.Pid, syscall.SIGKILL)
		if !waitGone(c, 5*time.Second) {
			return nil, fmt.Errorf("pid %d did not exit after SIGKILL", run.Pid)
		}
	}
	if err := os.Remove(run.File); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("removing pid file: %w", err)
	}
	fmt.Fprintf(out, "Registry stopped\n")
	return res, nil
}

// Restart stops every registry of c's storage (on c's port and on any
// other port it was started on) and starts it as c configures now.
func Restart(ctx context.Context, c *config.Config, o Options) (*StartResult, error) {
	for _, r := range runstate.Others(c) {
		other := *c
		other.Port = r.Port
		if _, err := Stop(&other, o); err != nil {
			return nil, err
		}
	}
	if _, err := Stop(c, o); err != nil {
		return nil, err
	}
	return Start(ctx, c, o)
}

// waitGone polls until the recorded server is gone or timeout passes.
func waitGone(c *config.Config, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if runstate.Check(c).Pid == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Status reports whether the registry runs and answers. It returns a
// *tasks.SilentError with code 1 when it does not (the message is printed).
func Status(ctx context.Context, c *config.Config, o Options) error {
	o.defaults()
	out := o.Out
	run := runstate.Check(c)
	if run.Err != nil {
		return run.Err
	}
	if run.Pid == 0 {
		fmt.Fprintf(out, "Registry not running\n")
		if run.Stale {
			fmt.Fprintf(out, "  (stale pid file %s: pid %d is gone; `%s start` cleans it up)\n", run.File, run.StalePid, o.Script)
		}
		if ping(ctx, c, o.Script) == nil {
			fmt.Fprintf(out, "  (but a registry not started from %s answers at %s)\n", c.Storage, c.BaseURL())
		}
		return &tasks.SilentError{Code: 1}
	}
	fmt.Fprintf(out, "Registry running (pid %d)\n", run.Pid)
	fmt.Fprintf(out, "  URL:     %s\n", c.BaseURL())
	fmt.Fprintf(out, "  Mode:    %s\n", c.Mode())
	fmt.Fprintf(out, "  Storage: %s\n", c.Storage)
	perr := ping(ctx, c, o.Script)
	if perr != nil {
		fmt.Fprintf(out, "  Status:  not responding\n")
		var nr *registry.NotRespondingError
		if errors.As(perr, &nr) && nr.Err != nil {
			fmt.Fprintf(out, "  (%v)\n", nr.Err)
		} else if nr == nil {
			fmt.Fprintf(out, "  (%v)\n", perr)
		}
		fmt.Fprintf(out, "  Log:     %s\n", runstate.LogFile(c))
		return &tasks.SilentError{Code: 1}
	}
	fmt.Fprintf(out, "  Status:  healthy\n")
	return nil
}

// Tail returns the last n lines of file, or a note when it cannot be read.
func Tail(file string, n int) string {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Sprintf("  (cannot read %s: %v)", file, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n")
}

// ping checks that the registry of c answers, through the one Target.
func ping(ctx context.Context, c *config.Config, script string) error {
	t, err := registry.New(c, script, nil)
	if err != nil {
		return err
	}
	return t.Ping(ctx)
}
