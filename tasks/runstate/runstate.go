// Package runstate records and reads which registry process serves one port
// of one storage directory: the pid file (pid, start time, URL and mode)
// and the log file beside it, the pipe on which a server started by start
// says it listens, and the record of the last gc. start/stop/status
// (tasks/server) and serve (tasks/serve) write and read it; push asks it
// whether the registry is served locally.
package runstate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// PidFile is the pid file of the registry serving one port of one storage
// directory: "registry-<port>.pid". It holds the pid on the first line (so
// `kill $(head -1 file)` works) and the process start time, in clock ticks
// since boot as /proc/<pid>/stat reports it, on the second. The start time
// tells our server apart from an unrelated program that got the same pid
// after ours died.
func PidFile(c *config.Config) string {
	return filepath.Join(c.Storage, "registry-"+c.Port+".pid")
}

// LogFile is the log of the registry serving c's port: "registry-<port>.log".
func LogFile(c *config.Config) string {
	return filepath.Join(c.Storage, "registry-"+c.Port+".log")
}

// pidInfo is the content of a pid file.
type pidInfo struct {
	Pid       int
	StartTime string // "" when unknown (no /proc)
	URL       string // scheme://host:port it was started for ("" in old files)
	Mode      string // config.Mode() it was started in ("" in old files)
}

func formatPidFile(p pidInfo) []byte {
	return []byte(fmt.Sprintf("%d\n%s\n%s\n%s\n", p.Pid, p.StartTime, p.URL, p.Mode))
}

// parsePidFile reads the content of a pid file; a missing start time line is
// allowed.
func parsePidFile(data []byte) (pidInfo, error) {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return pidInfo{}, fmt.Errorf("invalid pid %q", strings.TrimSpace(lines[0]))
	}
	p := pidInfo{Pid: pid}
	if len(lines) > 1 {
		p.StartTime = strings.TrimSpace(lines[1])
	}
	if len(lines) > 3 {
		p.URL, p.Mode = strings.TrimSpace(lines[2]), strings.TrimSpace(lines[3])
	}
	return p, nil
}

// procState is what the process table says about one pid.
type procState struct {
	Alive     bool   // exists and is not a zombie
	StartTime string // from /proc/<pid>/stat, "" when unavailable
	Cmdline   []string
}

// procRoot is where the kernel shows processes.
const procRoot = "/proc"

// inspectProc looks pid up in the process table.
func inspectProc(pid int) procState {
	stat, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		if _, statErr := os.Stat(procRoot + "/self"); statErr == nil {
			return procState{} // /proc works and the pid is gone
		}
		// No /proc: fall back to signal 0.
		err := syscall.Kill(pid, 0)
		return procState{Alive: err == nil || errors.Is(err, syscall.EPERM)}
	}
	state, start, ok := parseStat(string(stat))
	if !ok {
		return procState{}
	}
	ps := procState{Alive: state != "Z" && state != "X", StartTime: start}
	if cmd, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline")); err == nil {
		ps.Cmdline = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	}
	return ps
}

// parseStat extracts the state (field 3) and start time (field 22) from the
// text of /proc/<pid>/stat. The command name (field 2) may contain spaces
// and parentheses, so fields are counted from its closing parenthesis.
func parseStat(s string) (state, start string, ok bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return "", "", false
	}
	return f[0], f[19], true
}

// isOurServer reports whether the process described by ps is the registry
// server recorded in p: alive, same start time when both are known, and an
// `ocireg-tool serve` command line when the start time is unknown.
func isOurServer(p pidInfo, ps procState) bool {
	if !ps.Alive {
		return false
	}
	if p.StartTime != "" && ps.StartTime != "" {
		return p.StartTime == ps.StartTime
	}
	if len(ps.Cmdline) == 0 {
		return true // nothing to compare; trust the pid
	}
	for _, a := range ps.Cmdline[1:] {
		if a == "serve" {
			return true
		}
	}
	return false
}

// Running is the state of the registry of one port.
type Running struct {
	Pid   int
	Stale bool // a pid file exists but its process is gone or another program
	// StalePid is the pid a stale pid file named (0 when unreadable).
	StalePid int
	// StaleAlive is true when StalePid is alive but another program (the
	// pid was reused after the registry died).
	StaleAlive bool
	Err        error  // the pid file could not be read
	File       string // the pid file
	Port       string // the port it serves
	// URL and Mode are what the running registry was started with ("" when
	// its pid file predates them).
	URL, Mode string
}

// Check reads the pid file of c's port and tells whether its server runs.
// A pid of 0 means not running.
func Check(c *config.Config) Running {
	r := Running{File: PidFile(c), Port: c.Port}
	data, err := os.ReadFile(r.File)
	if err != nil {
		if !os.IsNotExist(err) {
			r.Err = fmt.Errorf("reading %s: %w", r.File, err)
		}
		return r
	}
	p, err := parsePidFile(data)
	if err != nil {
		r.Stale = true
		return r
	}
	if ps := inspectProc(p.Pid); !isOurServer(p, ps) {
		r.Stale, r.StalePid, r.StaleAlive = true, p.Pid, ps.Alive
		return r
	}
	r.Pid, r.URL, r.Mode = p.Pid, p.URL, p.Mode
	return r
}

// Others returns the running registries of c's storage directory on other
// ports than c's.
func Others(c *config.Config) []Running {
	files, _ := filepath.Glob(filepath.Join(c.Storage, "registry-*.pid"))
	var out []Running
	for _, f := range files {
		port := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "registry-"), ".pid")
		if port == c.Port {
			continue
		}
		other := *c
		other.Port = port
		if r := Check(&other); r.Pid != 0 {
			out = append(out, r)
		}
	}
	return out
}

// writePidFile records pid (and its start time) in c's pid file.
func WritePidFile(c *config.Config, pid int) error {
	p := pidInfo{Pid: pid, StartTime: inspectProc(pid).StartTime, URL: c.BaseURL(), Mode: c.Mode()}
	_, err := safefile.WriteAtomic(PidFile(c), formatPidFile(p), 0o644)
	return err
}

// Holder is the registry of ours that listens on a port, as the process
// table tells: its pid and the storage directory it serves (the working
// directory `start` gives it).
type Holder struct {
	Pid     int
	Storage string
	Running Running // its pid file's view (URL, mode), when readable
}

// PortHolder returns the ocireg-tool server listening on port, or nil when
// the listener is not one of ours (or cannot be identified).
func PortHolder(c *config.Config, port string) *Holder {
	inodes := listenInodes(port)
	if len(inodes) == 0 {
		return nil
	}
	procs, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*"))
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		if !holdsSocket(p, inodes) {
			continue
		}
		ps := inspectProc(pid)
		if !isOurServer(pidInfo{Pid: pid}, procState{Alive: ps.Alive, Cmdline: ps.Cmdline}) || len(ps.Cmdline) == 0 {
			return nil
		}
		cwd, err := os.Readlink(filepath.Join(p, "cwd"))
		if err != nil {
			return nil
		}
		other := *c
		other.Storage, other.Port = cwd, port
		return &Holder{Pid: pid, Storage: cwd, Running: Check(&other)}
	}
	return nil
}

// listenInodes returns the socket inodes listening on TCP port (IPv4 and
// IPv6), from /proc/net/tcp*.
func listenInodes(port string) map[string]bool {
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil
	}
	hexPort := fmt.Sprintf(":%04X", n)
	out := map[string]bool{}
	for _, f := range []string{procRoot + "/net/tcp", procRoot + "/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			// local_address rem_address st ... inode (10th field)
			if len(fields) > 9 && strings.HasSuffix(fields[1], hexPort) && fields[3] == "0A" {
				out[fields[9]] = true
			}
		}
	}
	return out
}

func holdsSocket(procDir string, inodes map[string]bool) bool {
	fds, err := os.ReadDir(filepath.Join(procDir, "fd"))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(procDir, "fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			return true
		}
	}
	return false
}
