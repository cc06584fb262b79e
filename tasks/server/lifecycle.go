package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Options are what start, stop and status need besides the configuration.
type Options struct {
	// Self is the ocireg-tool binary that `start` runs as `serve`.
	Self string
	// Script names the helper script in error messages.
	Script string
	// Environ is the environment handed to the server (secrets removed).
	Environ []string
	// Events receives what happens while the task works (nil: dropped).
	Events events.Sink
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
	o.Events = events.Or(o.Events)
}

// StartResult says what Start found, prepared and launched.
type StartResult struct {
	// Already is true when the registry of this storage and port was
	// running: Start did nothing else.
	Already bool `json:"already_running"`
	// Pid is the running registry's (0 when the start failed).
	Pid int `json:"pid,omitempty"`
	// Ready is the time from launch to the first answer of /v2/.
	Ready time.Duration `json:"ready_ns,omitempty"`

	URL string `json:"url"`
	// UI is the address of the registry browser (empty when
	// CONTAINER_REGISTRY_UI=0).
	UI      string `json:"ui_url,omitempty"`
	Mode    string `json:"mode"`
	Secure  bool   `json:"secure"`
	Storage string `json:"storage"`
	Config  string `json:"config"`
	Log     string `json:"log"`
	// Listen is where the registry listens (nil when Start did not get
	// that far, or found it running).
	Listen *regconfig.Listen `json:"listen,omitempty"`

	// StalePidFile is a pid file left by a registry that is gone, removed
	// before starting; StalePid is the pid it named (0: unreadable).
	StalePidFile string `json:"stale_pid_file_removed,omitempty"`
	StalePid     int    `json:"stale_pid,omitempty"`
	// Secrets says what the secrets step found or made (secure mode).
	Secrets *generator.SecretsReport `json:"secrets,omitempty"`
	// WroteConfig is true when the storage had no registry-config.yml and
	// Start wrote one.
	WroteConfig bool `json:"wrote_config,omitempty"`
	// Launched is true once the server process was launched (and Launching
	// emitted).
	Launched bool `json:"-"`
}

// lockWait bounds how long start, stop and gc wait for another of them
// working on the same registry (a start holds the lock until /v2/
// answers, a gc until its sweep is done).
const lockWait = 2 * time.Minute

// Start launches `ocireg-tool serve` detached (its own session, stdin from
// /dev/null, output to the per-port log file), records its pid and returns
// once /v2/ answers. It first removes a stale pid file, ensures the
// secrets (generator.EnsureSecrets) and writes a missing registry-config.yml.
// It holds the port's lock (runstate.Lock) throughout, so concurrent
// starts and stops of one registry take turns: one launches, the others
// find it running. On error the result, when not nil, says what was done
// before the failure.
func Start(ctx context.Context, c *config.Config, o Options) (*StartResult, error) {
	o.defaults()
	unlock, err := lockStorage(ctx, c)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return start(ctx, c, o)
}

// lockStorage creates the storage directory when missing and takes the
// port's lock (runstate.Lock), waiting up to lockWait.
func lockStorage(ctx context.Context, c *config.Config) (func(), error) {
	if err := os.MkdirAll(c.Storage, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	return runstate.Lock(ctx, c, lockWait)
}

// start is Start with the port's lock held.
func start(ctx context.Context, c *config.Config, o Options) (*StartResult, error) {
	res := &StartResult{URL: c.BaseURL(), Mode: c.Mode(), Secure: c.Secure, Storage: c.Storage,
		Config: c.RegistryConfig(), Log: runstate.LogFile(c), UI: c.UIURL()}
	if err := checkNotRunning(c, o.Script, res); err != nil || res.Already {
		return res, err
	}
	addr, err := prepare(ctx, c, o, res)
	if err != nil {
		return res, err
	}
	o.Events.Emit(Launching{Start: res})
	res.Launched = true
	if err := launch(ctx, c, o, addr, res); err != nil {
		return res, err
	}
	return res, nil
}

// checkNotRunning finds out whether the registry of c already runs (then
// res.Already), fails when it runs in another mode or on another port of
// this storage, and removes a stale pid file.
func checkNotRunning(c *config.Config, script string, res *StartResult) error {
	run := runstate.Check(c)
	if run.Err != nil {
		return run.Err
	}
	if run.Pid != 0 {
		if run.Mode != "" && run.Mode != c.Mode() {
			return fmt.Errorf("Registry already running (pid %d), but in %s at %s; configured now: %s at %s\nRestart it in the configured mode: %s restart",
				run.Pid, run.Mode, run.URL, c.Mode(), c.BaseURL(), script)
		}
		res.Already, res.Pid = true, run.Pid
		return nil
	}
	if others := runstate.Others(c); len(others) > 0 {
		r := others[0]
		return fmt.Errorf("a registry of this storage (%s) already runs at %s (pid %d, %s); configured now: %s\nRestart it on the configured port: %s restart",
			c.Storage, r.URL, r.Pid, r.Mode, c.BaseURL(), script)
	}
	if run.Stale {
		if err := os.Remove(run.File); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing stale pid file: %w", err)
		}
		res.StalePidFile, res.StalePid = run.File, run.StalePid
	}
	return nil
}

// prepare ensures the secrets and the registry configuration, decides
// where the registry listens and checks that it can. It returns the
// addresses, for the log.
func prepare(ctx context.Context, c *config.Config, o Options, res *StartResult) (string, error) {
	secrets, err := generator.EnsureSecrets(c, time.Now(), generator.AtStart)
	if secrets != nil && (secrets.PKI != nil || secrets.Auth != nil) {
		res.Secrets = secrets
	}
	if err != nil {
		return "", err
	}
	if res.WroteConfig, err = regconfig.EnsureFile(c); err != nil {
		return "", err
	}
	cfg, _, err := regconfig.Load(c)
	if err != nil {
		return "", err
	}
	listen := regconfig.ListenAddrs(c, cfg)
	res.Listen = &listen
	if err := checkPortFree(ctx, c, listen.Addrs, o.Script); err != nil {
		return "", err
	}
	return strings.Join(listen.Addrs, ", "), nil
}

// launch runs the server detached, records its pid and waits until it
// answers; on failure it kills what it launched and removes the pid file.
func launch(ctx context.Context, c *config.Config, o Options, addr string, res *StartResult) error {
	// The log names repositories, users and client addresses: 0600, also
	// when an older start made it 0644.
	logf, err := os.OpenFile(runstate.LogFile(c), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening log file: %w", err)
	}
	defer logf.Close()
	if err := logf.Chmod(0o600); err != nil {
		return fmt.Errorf("setting mode of %s: %w", runstate.LogFile(c), err)
	}
	fmt.Fprintf(logf, "=== %s: starting registry on %s\n", time.Now().Format(time.RFC3339), addr)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()

	listening, notify, err := runstate.ReadyPipe()
	if err != nil {
		return err
	}
	defer listening.Close()
	cmd := exec.Command(o.Self, "serve")
	cmd.Env = append(serverEnv(o.Environ, c), runstate.ReadyFDVar+"=3")
	cmd.Dir = c.Storage
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{notify}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	launched := time.Now()
	err = cmd.Start()
	notify.Close() // the server holds the only write end now
	if err != nil {
		return fmt.Errorf("launching %s serve: %w", o.Self, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := runstate.WritePidFile(c, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	if err := waitReady(ctx, c, o, launched, runstate.ListenSignal(listening), exited); err != nil {
		if !errors.Is(err, errExited) {
			_ = cmd.Process.Kill()
			<-exited
		}
		os.Remove(runstate.PidFile(c))
		return fmt.Errorf("%w\nLast lines of %s:\n%s", err, runstate.LogFile(c), Tail(runstate.LogFile(c), 20))
	}
	res.Pid, res.Ready = cmd.Process.Pid, time.Since(launched)
	// The server lives on in its own session; let go of it.
	_ = cmd.Process.Release()
	return nil
}

// errExited marks a server that exited while Start waited for it.
var errExited = errors.New("registry exited during startup")

// waitReady waits until the server launched says it listens (see
// readyPipe), then probes /v2/ until it answers, the server exits, ctx
// ends or o.ReadyTimeout passes. The server's own word that it holds the
// port is what tells it apart from a program that took the port since
// checkPortFree; the probe then checks that /v2/ answers with the CA and
// credentials clients will use.
func waitReady(ctx context.Context, c *config.Config, o Options, launched time.Time, listening <-chan struct{}, exited <-chan error) error {
	deadline := time.NewTimer(time.Until(launched.Add(o.ReadyTimeout)))
	defer deadline.Stop()
	// wait waits for ready, or fails when the server exits, ctx ends or
	// the deadline passes first.
	wait := func(ready <-chan struct{}) error {
		select {
		case <-ready:
			return nil
		case werr := <-exited:
			return fmt.Errorf("%w (%v)", errExited, werr)
		case <-ctx.Done():
			return errors.New("interrupted while waiting for the registry")
		case <-deadline.C:
			return fmt.Errorf("registry did not answer %s/v2/ within %s", c.BaseURL(), o.ReadyTimeout)
		}
	}
	if err := wait(listening); err != nil {
		return err
	}
	for interval := 5 * time.Millisecond; ; interval = min(2*interval, 200*time.Millisecond) {
		err := ping(ctx, c, o.Script)
		if err == nil {
			return nil
		}
		var nr *registry.NotRespondingError
		if !errors.As(err, &nr) {
			return fmt.Errorf("registry started but /v2/ failed: %v", err)
		}
		if err := wait(after(interval)); err != nil {
			return err
		}
	}
}

// after returns a channel closed once d has passed.
func after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
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
		"CONTAINER_REGISTRY_SECURE="+config.BoolString(c.Secure),
		"CONTAINER_REGISTRY_INSECURE="+config.BoolString(c.Insecure),
		"CONTAINER_REGISTRY_AUTH="+config.BoolString(c.Auth),
		// Where it listens depends on these too (regconfig.ListenAddrs).
		"CONTAINER_REGISTRY_LISTEN="+c.Listen(),
		"CONTAINER_REGISTRY_TARGET_URL="+c.TargetURL,
		// The shared backend (its credentials file is a path, not a secret).
		"CONTAINER_REGISTRY_BACKEND="+c.Backend.URL,
		"CONTAINER_REGISTRY_REDIS="+c.Get("CONTAINER_REGISTRY_REDIS").Raw,
		"CONTAINER_REGISTRY_BACKEND_CREDENTIALS="+c.BackendCredentials,
	)
}

// checkPortFree fails with a clear message when something else listens on
// the registry's port: another registry of ours (its storage, mode and pid,
// and both ways out), or another program.
func checkPortFree(ctx context.Context, c *config.Config, addrs []string, script string) error {
	lns, err := runstate.ListenAll(addrs)
	if err == nil {
		for _, ln := range lns {
			ln.Close()
		}
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
	// Stopped is true when a registry ran and was stopped.
	Stopped bool `json:"stopped"`
	// Pid is the registry stopped (0 when none ran).
	Pid int `json:"pid,omitempty"`
	// Killed is true when SIGTERM was not enough.
	Killed bool `json:"killed,omitempty"`
	// StalePidFile is a pid file of a registry that was already gone,
	// removed.
	StalePidFile string `json:"stale_pid_file_removed,omitempty"`
}

// Stop sends SIGTERM to the registry of c's port, waits for it to exit
// (SIGKILL after o.StopTimeout) and removes the pid file. A registry that
// is not running is not an error. It holds the port's lock, as Start does.
func Stop(c *config.Config, o Options) (*StopResult, error) {
	o.defaults()
	if _, err := os.Stat(c.Storage); os.IsNotExist(err) {
		return &StopResult{}, nil // nothing ever ran here
	}
	unlock, err := runstate.Lock(context.Background(), c, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return stop(c, o)
}

// stop is Stop with the port's lock held.
func stop(c *config.Config, o Options) (*StopResult, error) {
	run := runstate.Check(c)
	if run.Err != nil {
		return nil, run.Err
	}
	if run.Pid == 0 {
		res := &StopResult{}
		if run.Stale && os.Remove(run.File) == nil {
			res.StalePidFile = run.File
		}
		return res, nil
	}
	o.Events.Emit(Stopping{Pid: run.Pid})
	res := &StopResult{Stopped: true, Pid: run.Pid}
	if err := syscall.Kill(run.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return nil, fmt.Errorf("stopping pid %d: %w", run.Pid, err)
	}
	if !waitGone(c, o.StopTimeout) {
		o.Events.Emit(Killing{Pid: run.Pid, After: o.StopTimeout})
		res.Killed = true
		_ = syscall.Kill(run.Pid, syscall.SIGKILL)
		if !waitGone(c, 5*time.Second) {
			return nil, fmt.Errorf("pid %d did not exit after SIGKILL", run.Pid)
		}
	}
	if err := os.Remove(run.File); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("removing pid file: %w", err)
	}
	return res, nil
}

// RestartResult says what Restart stopped and started.
type RestartResult struct {
	// Stopped lists the stops, one per port this storage was served on
	// (each also emitted as a Stopped event when done).
	Stopped []*StopResult `json:"stopped"`
	Start   *StartResult  `json:"start"`
}

// Restart stops every registry of c's storage (on c's port and on any
// other port it was started on) and starts it as c configures now,
// holding c's port lock from its stop to its start. On error the result
// says what was done before the failure.
func Restart(ctx context.Context, c *config.Config, o Options) (*RestartResult, error) {
	o.defaults()
	res := &RestartResult{}
	stopped := func(r *StopResult, err error) error {
		if err != nil {
			return err
		}
		res.Stopped = append(res.Stopped, r)
		o.Events.Emit(Stopped{Stop: r})
		return nil
	}
	for _, r := range runstate.Others(c) {
		other := *c
		other.Port = r.Port
		if err := stopped(Stop(&other, o)); err != nil {
			return res, err
		}
	}
	unlock, err := lockStorage(ctx, c)
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := stopped(stop(c, o)); err != nil {
		return res, err
	}
	res.Start, err = start(ctx, c, o)
	return res, err
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

// StatusResult says whether the registry runs and answers.
type StatusResult struct {
	// Running is true when the pid file names a live registry server.
	Running bool `json:"running"`
	// Healthy is true when it runs and /v2/ answers.
	Healthy bool `json:"healthy"`
	Pid     int  `json:"pid,omitempty"`

	URL     string `json:"url"`
	Mode    string `json:"mode"`
	Storage string `json:"storage"`
	Log     string `json:"log"`

	// StalePidFile is a pid file whose process is gone or another program
	// (start removes it); StalePid is the pid it names (0: unreadable);
	// StaleAlive is true when that pid lives as another program.
	StalePidFile string `json:"stale_pid_file,omitempty"`
	StalePid     int    `json:"stale_pid,omitempty"`
	StaleAlive   bool   `json:"stale_pid_alive,omitempty"`
	// Foreign is true when none of ours runs but a registry answers at
	// the URL (one not started from this storage).
	Foreign bool `json:"foreign,omitempty"`
	// ProbeErr is why a running registry did not answer; Probe is the
	// detail worth showing ("" when there is nothing more to say).
	ProbeErr error  `json:"-"`
	Probe    string `json:"probe_error,omitempty"`

	// Backend is the shared object storage ("" : the local filesystem);
	// Peers the other live replicas on it, PeersErr why they are unknown.
	Backend  string            `json:"backend,omitempty"`
	Peers    []replica.Replica `json:"peers,omitempty"`
	PeersErr string            `json:"peers_error,omitempty"`
}

// OK reports whether the registry runs and answers: `status` exits 0 only
// then.
func (r *StatusResult) OK() bool { return r.Running && r.Healthy }

// Status finds out whether the registry of c runs and answers. A stopped
// or unhealthy registry is a result, not an error; errors are for a pid
// file that cannot be read.
func Status(ctx context.Context, c *config.Config, o Options) (*StatusResult, error) {
	o.defaults()
	run := runstate.Check(c)
	if run.Err != nil {
		return nil, run.Err
	}
	res := &StatusResult{Pid: run.Pid, Running: run.Pid != 0, URL: c.BaseURL(), Mode: c.Mode(),
		Storage: c.Storage, Log: runstate.LogFile(c)}
	if !res.Running {
		if run.Stale {
			res.StalePidFile, res.StalePid, res.StaleAlive = run.File, run.StalePid, run.StaleAlive
		}
		res.Foreign = ping(ctx, c, o.Script) == nil
		return res, nil
	}
	res.ProbeErr = ping(ctx, c, o.Script)
	res.Healthy = res.ProbeErr == nil
	backendStatus(ctx, c, res)
	var nr *registry.NotRespondingError
	switch {
	case res.ProbeErr == nil:
	case errors.As(res.ProbeErr, &nr):
		if nr.Err != nil {
			res.Probe = nr.Err.Error()
		}
	default:
		res.Probe = res.ProbeErr.Error()
	}
	return res, nil
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
