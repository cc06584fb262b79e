package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// result is what a child process did.
type result struct {
	Stdout, Stderr string
	Elapsed        time.Duration
}

// run runs prog with args and env added to a minimal environment, and
// fails with its output when it exits non-zero.
func run(ctx context.Context, env []string, prog string, args ...string) (*result, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(baseEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := &result{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(prog), strings.Join(args, " "), err, tail(r.Stdout), tail(r.Stderr))
	}
	return r, nil
}

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LANG=C.UTF-8"}
}

// registry is a server under test: ours or Debian's docker-registry.
type registry interface {
	// Addr is host:port.
	Addr() string
	// DataDir is the storage root (the directory holding docker/).
	DataDir() string
	// Start launches the server and returns once /v2/ answers, with the
	// time that took as this server's start-to-ready.
	Start(ctx context.Context) (time.Duration, error)
	// Stop stops it; stopping a stopped server is fine.
	Stop() error
	// Pid is the server's process id while it runs.
	Pid() int
}

// ours is a generated helper script with its own storage and port.
type ours struct {
	tool    string
	storage string
	script  string
	addr    string
	pid     int
	env     []string // added to every script run
	// ReadyInternal is what `start` reported as launch-to-ready.
	ReadyInternal time.Duration
}

// newOurs generates a helper below dir for 127.0.0.1:<free port> with
// vars added to the env dump. The listen address is narrowed to 127.0.0.1.
func newOurs(ctx context.Context, tool, dir string, vars map[string]string) (*ours, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	o := &ours{tool: tool, storage: filepath.Join(dir, "container-registry"), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	o.script = filepath.Join(o.storage, "container-registry.sh")
	all := map[string]string{
		"TOPDIR":                      dir,
		"CONTAINER_REGISTRY_STORAGE":  o.storage,
		"CONTAINER_REGISTRY_URL":      o.addr,
		"CONTAINER_REGISTRY_INSECURE": "1",
	}
	for k, v := range vars {
		all[k] = v
	}
	dump := filepath.Join(dir, "env.dump")
	if err := os.WriteFile(dump, []byte(config.FormatDump(all)), 0o644); err != nil {
		return nil, err
	}
	if _, err := run(ctx, nil, tool, "generate", "--env-dump", dump); err != nil {
		return nil, err
	}
	// The generated configuration listens on every interface; the
	// benchmark stays on loopback (the host part of http.addr is kept).
	cfgPath := filepath.Join(o.storage, "registry-config.yml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf("addr: \":%d\"", port)
	if !bytes.Contains(cfg, []byte(want)) {
		return nil, fmt.Errorf("%s: no %s line to narrow to 127.0.0.1", cfgPath, want)
	}
	cfg = bytes.Replace(cfg, []byte(want), []byte(fmt.Sprintf("addr: \"127.0.0.1:%d\"", port)), 1)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *ours) Addr() string    { return o.addr }
func (o *ours) DataDir() string { return filepath.Join(o.storage, "data") }
func (o *ours) Pid() int        { return o.pid }

var readyRE = regexp.MustCompile(`Registry started \(pid (\d+), ready in ([0-9.]+[a-zµ]+)\)`)

// Start runs `container-registry.sh start`; the time is the whole
// command's, as a user or CI script sees it.
func (o *ours) Start(ctx context.Context) (time.Duration, error) {
	r, err := o.Run(ctx, "start")
	if err != nil {
		return 0, err
	}
	m := readyRE.FindStringSubmatch(r.Stdout + r.Stderr)
	if m == nil {
		return 0, fmt.Errorf("start: no \"Registry started (pid N, ready in D)\" line in:\n%s%s", r.Stdout, r.Stderr)
	}
	o.pid, _ = strconv.Atoi(m[1])
	o.ReadyInternal, _ = time.ParseDuration(m[2])
	return r.Elapsed, nil
}

// Stop runs `container-registry.sh stop`.
func (o *ours) Stop() error {
	if _, err := os.Stat(o.script); err != nil {
		return nil
	}
	_, err := o.Run(context.Background(), "stop")
	o.pid = 0
	return err
}

// Run runs the helper script with args.
func (o *ours) Run(ctx context.Context, args ...string) (*result, error) {
	return run(ctx, o.env, o.script, args...)
}

// dockerRegistry is Debian's docker-registry (distribution 2.8) on a
// configuration equivalent to the generated one: filesystem storage,
// delete enabled, in-memory blob descriptor cache, info logging with the
// access log on, storage health check.
type dockerRegistry struct {
	bin    string
	dir    string
	addr   string
	config string
	cmd    *exec.Cmd
	exited chan struct{}
}

func newDockerRegistry(bin, dir string) (*dockerRegistry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &dockerRegistry{bin: bin, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), config: filepath.Join(dir, "config.yml")}
	if err := os.MkdirAll(d.DataDir(), 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
  fields:
    service: docker-registry
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
http:
  addr: %q
  secret: bench-only-http-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`, d.DataDir(), d.addr)
	return d, os.WriteFile(d.config, []byte(cfg), 0o644)
}

func (d *dockerRegistry) Addr() string    { return d.addr }
func (d *dockerRegistry) DataDir() string { return filepath.Join(d.dir, "data") }

func (d *dockerRegistry) Pid() int {
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Start launches `docker-registry serve` and polls /v2/ every 5 ms; the
// time is from launch to the first 200.
func (d *dockerRegistry) Start(ctx context.Context) (time.Duration, error) {
	logf, err := os.OpenFile(filepath.Join(d.dir, "registry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(d.bin, "serve", d.config)
	cmd.Env = baseEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func() { cmd.Wait(); close(d.exited) }()
	ready, err := pollReady(ctx, d.addr, 5*time.Millisecond, 30*time.Second, d.exited)
	if err != nil {
		d.Stop()
		return 0, fmt.Errorf("docker-registry: %w (log: %s)", err, filepath.Join(d.dir, "registry.log"))
	}
	return ready.Sub(start), nil
}

// Stop sends SIGTERM (SIGKILL after 10s) and waits.
func (d *dockerRegistry) Stop() error {
	if d.cmd == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
	return nil
}

// pollReady GETs http://addr/v2/ every interval until it answers 200.
func pollReady(ctx context.Context, addr string, interval, timeout time.Duration, exited <-chan struct{}) (time.Time, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-exited:
			return time.Time{}, fmt.Errorf("exited during startup")
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("/v2/ did not answer within %s", timeout)
		}
	}
}

// procStatus reads a field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				return strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// resetStorage stops r, empties its storage and starts it again.
func resetStorage(ctx context.Context, r registry) error {
	if err := r.Stop(); err != nil {
		return err
	}
	if err := os.RemoveAll(r.DataDir()); err != nil {
		return err
	}
	if err := os.MkdirAll(r.DataDir(), 0o755); err != nil {
		return err
	}
	_, err := r.Start(ctx)
	return err
}
