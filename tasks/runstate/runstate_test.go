package runstate

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "1234 (ocireg (x) tool) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 9 0 987654 123456 789 18446744073709551615"
	state, start, ok := parseStat(line)
	if !ok || state != "S" || start != "987654" {
		t.Fatalf("parseStat = %q %q %v", state, start, ok)
	}
	if _, _, ok := parseStat("garbage"); ok {
		t.Fatal("parseStat accepted garbage")
	}
}

func TestIsOurServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    pidInfo
		ps   procState
		want bool
	}{
		{"gone", pidInfo{Pid: 5, StartTime: "10"}, procState{}, false},
		{"same start", pidInfo{Pid: 5, StartTime: "10"}, procState{Alive: true, StartTime: "10"}, true},
		{"pid reused", pidInfo{Pid: 5, StartTime: "10"}, procState{Alive: true, StartTime: "99", Cmdline: []string{"/x/ocireg-tool", "serve"}}, false},
		{"zombie", pidInfo{Pid: 5, StartTime: "10"}, procState{Alive: false, StartTime: "10"}, false},
		{"old file, serve", pidInfo{Pid: 5}, procState{Alive: true, StartTime: "10", Cmdline: []string{"/x/ocireg-tool", "serve"}}, true},
		{"old file, other program", pidInfo{Pid: 5}, procState{Alive: true, StartTime: "10", Cmdline: []string{"/usr/bin/vim"}}, false},
	} {
		if got := isOurServer(tc.p, tc.ps); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckPidFile(t *testing.T) {
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_URL": "localhost:5999"})
	if err != nil {
		t.Fatal(err)
	}
	if r := Check(c); r.Pid != 0 || r.Stale || r.Err != nil {
		t.Fatalf("no pid file: %+v", r)
	}
	// Our own process, with its real start time, counts as running.
	if err := WritePidFile(c, os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if r := Check(c); r.Pid != os.Getpid() {
		t.Fatalf("live pid: %+v", r)
	}
	// Same pid, other start time: the pid was reused.
	os.WriteFile(PidFile(c), []byte(strconv.Itoa(os.Getpid())+"\n1\n"), 0o644)
	if r := Check(c); r.Pid != 0 || !r.Stale || r.StalePid != os.Getpid() || !r.StaleAlive {
		t.Fatalf("reused pid: %+v", r)
	}
	// A pid that is gone.
	os.WriteFile(PidFile(c), []byte("999999\n1\n"), 0o644)
	if r := Check(c); r.Pid != 0 || !r.Stale || r.StalePid != 999999 || r.StaleAlive {
		t.Fatalf("dead pid: %+v", r)
	}
	os.WriteFile(PidFile(c), []byte("not a pid\n"), 0o644)
	if r := Check(c); r.Pid != 0 || !r.Stale {
		t.Fatalf("garbage pid file: %+v", r)
	}
	if filepath.Base(PidFile(c)) != "registry-5999.pid" || filepath.Base(LogFile(c)) != "registry-5999.log" {
		t.Fatalf("names: %s %s", PidFile(c), LogFile(c))
	}
}
