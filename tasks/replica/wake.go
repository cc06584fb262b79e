package replica

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Waking. A replica sees a gc request at its next poll (clusterPoll); the
// gc wakes those of its own host at once, so a collection of a build
// host's registry does not wait for the poll: members in the gc's own
// process directly, servers of this host with WakeSignal. Only a replica
// whose record says it takes the signal gets it (Replica.Wake): the
// default action of SIGUSR1 ends a process.

// WakeSignal is the signal a server takes as "look for a gc request now"
// (see Member.Poke); it must be handled before Join.
const WakeSignal = syscall.SIGUSR1

// wakeName is WakeSignal in replica records.
const wakeName = "SIGUSR1"

// members are the members of this process, by id.
var members sync.Map

// Poke makes m look for a gc request now.
func (m *Member) Poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// wakeLocal wakes the live replicas of this host.
func wakeLocal(live []Replica) {
	host, _ := os.Hostname()
	for _, r := range live {
		if r.Host != host {
			continue
		}
		if m, ok := members.Load(r.ID); ok && r.Pid == os.Getpid() {
			m.(*Member).Poke()
			continue
		}
		if r.Wake == wakeName && r.Pid > 0 && r.Pid != os.Getpid() && isServer(r.Pid) {
			_ = syscall.Kill(r.Pid, WakeSignal)
		}
	}
}

// isServer reports whether process pid of this host is a server of this
// tool (its command line is "<...>ocireg-tool serve ..."): a replica record
// outlives its process by up to replicaStale, and the pid may be another
// program's by then.
func isServer(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(cmdline, []byte{0})
	return len(args) >= 2 && bytes.Contains(args[0], []byte("ocireg-tool")) && string(args[1]) == "serve"
}
