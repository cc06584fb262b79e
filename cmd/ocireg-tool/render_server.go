package main

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/gc"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// The text of start, restart, stop, status and gc: the lines the shell
// original printed (scripts grep "Registry started", "already running
// (pid N)", "Registry stopped", "Registry not running", "healthy"). Events
// are written as they come; each command writes its result at the end.

// serverText writes the events of the server tasks as text. It is safe
// for concurrent use.
type serverText struct {
	mu     sync.Mutex
	w      io.Writer
	script string
	// prune writes gc's dry run as prune's summary of it.
	prune bool
}

// Emit writes the lines of one event.
func (t *serverText) Emit(e any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.w
	switch e := e.(type) {
	case server.Launching:
		writeStartPrep(w, e.Start)
		writeStartBanner(w, e.Start)
	case server.Stopping:
		fmt.Fprintf(w, "Stopping container registry (pid %d)...\n", e.Pid)
	case server.Killing:
		fmt.Fprintf(w, "  still running after %s, sending SIGKILL\n", e.After)
	case server.Stopped:
		writeStop(w, e.Stop)
	case server.Started:
		writeStart(w, e.Start, t.script)
	case server.WritesHeld:
		fmt.Fprintf(w, "Pushes wait while the collection sweeps (pulls go on): %s holding writes%s\n", strings.Join(e.Registries, ", "), inUseNote(e.InUse))
	case server.SweepStopping:
		fmt.Fprintf(w, "Stopping the registry for the collection (%s)...\n", e.Why)
	case server.Restarting:
		fmt.Fprintf(w, "Starting the registry again...\n")
	case server.WritesResumed:
		fmt.Fprintf(w, "Pushes resume\n")
	case server.DryRun:
		if t.prune {
			writePruneDryRun(w, e)
		} else {
			writeDryRun(w, e, t.script)
		}
	case server.PrunePlanned:
		writePlan(w, e.Plan)
	case server.TagsPruned:
		writeTagsPruned(w, e.Removed)
	case server.Collected:
		r := e.Removed
		fmt.Fprintf(w, "Garbage collection complete: removed %d blob(s) and %d manifest(s)%s, freed %s\n",
			len(r.Blobs), len(r.Manifests), uploadsNote(r), humanBytes(r.Bytes))
	}
}

// writeStart writes what follows Start's events: the result of a start
// that found the registry running or that launched it. A start that
// failed before launching writes what it prepared (Launching, which writes
// it otherwise, never came).
func writeStart(w io.Writer, r *server.StartResult, script string) {
	if r == nil {
		return
	}
	if r.Already {
		fmt.Fprintf(w, "Registry already running (pid %d)\n", r.Pid)
		fmt.Fprintf(w, "  URL: %s\n", r.URL)
		if r.UI != "" {
			fmt.Fprintf(w, "  UI:  %s\n", r.UI)
		}
		return
	}
	if !r.Launched {
		writeStartPrep(w, r)
	}
	if r.Pid == 0 {
		return
	}
	fmt.Fprintf(w, "Registry started (pid %d, ready in %s)\n", r.Pid, r.Ready.Round(time.Millisecond))
	if r.Secure {
		fmt.Fprintf(w, "\nTargets need the CA: IMAGE_INSTALL:append = \" container-registry-ca\"\n")
	}
	fmt.Fprintf(w, "Stop it with: %s stop\n", script)
}

// writeStartPrep writes what Start did before launching: the stale pid
// file it removed, the secrets it made and the configuration it wrote.
func writeStartPrep(w io.Writer, r *server.StartResult) {
	switch {
	case r.StalePidFile != "" && r.StalePid != 0:
		fmt.Fprintf(w, "Removed stale pid file %s (pid %d is not the registry any more)\n", r.StalePidFile, r.StalePid)
	case r.StalePidFile != "":
		fmt.Fprintf(w, "Removed unreadable pid file %s\n", r.StalePidFile)
	}
	if r.Secrets != nil {
		writeStartSecrets(w, r.Secrets)
	}
	if r.WroteConfig {
		fmt.Fprintf(w, "Wrote %s (none in this storage directory)\n", r.Config)
	}
}

// writeStartSecrets writes what the secrets step did at start.
func writeStartSecrets(w io.Writer, s *generator.SecretsReport) {
	if p := s.PKI; p != nil {
		if p.CreatedCA {
			fmt.Fprintf(w, "Generated CA and server certificate in %s\n", p.Dir)
		} else if p.CreatedServer {
			fmt.Fprintf(w, "Generated server certificate from the existing CA in %s\n", p.Dir)
		}
		if len(p.Missing) > 0 {
			fmt.Fprintf(w, "Warning: %s does not cover %v; remove server.crt and server.key to issue a new one from the same CA\n", p.ServerCert, p.Missing)
		}
	}
	if k := s.Signing; k != nil && (k.Created || k.PublicWritten) {
		writeSigningKey(w, k)
	}
	if a := s.Auth; a != nil {
		fmt.Fprintf(w, "Setting up authentication...\n")
		fmt.Fprintf(w, "  User: %s (password: %s)\n", a.User, a.Source)
		fmt.Fprintf(w, "  Password saved to: %s\n", a.PasswordFile)
	}
}

// writeSigningKey says which key signs and what became of it.
func writeSigningKey(w io.Writer, k *sign.KeyReport) {
	how := "existing, kept"
	switch {
	case k.Created:
		how = "new"
	case k.External && k.PublicWritten:
		how = "CONTAINER_REGISTRY_SIGNING_KEY; public key written"
	case k.External:
		how = "CONTAINER_REGISTRY_SIGNING_KEY"
	case k.PublicWritten:
		how = "existing; public key written"
	}
	fmt.Fprintf(w, "  Signing: %s (%s)\n", shellquote.Word(k.Key), how)
	fmt.Fprintf(w, "  Public:  %s (%s)\n", shellquote.Word(k.Public), k.Fingerprint)
}

// writeStartBanner writes what is being launched.
func writeStartBanner(w io.Writer, r *server.StartResult) {
	if r.Secure {
		fmt.Fprintf(w, "Starting SECURE container registry...\n")
	} else {
		fmt.Fprintf(w, "Starting container registry...\n")
	}
	fmt.Fprintf(w, "  URL:     %s\n", r.URL)
	if r.UI != "" {
		fmt.Fprintf(w, "  UI:      %s (in a browser)\n", r.UI)
	}
	if r.Listen != nil {
		fmt.Fprintf(w, "  Listen:  %s\n", listenText(r.Listen))
	}
	fmt.Fprintf(w, "  Mode:    %s\n", r.Mode)
	fmt.Fprintf(w, "  Storage: %s\n", r.Storage)
	fmt.Fprintf(w, "  Config:  %s\n", r.Config)
	fmt.Fprintf(w, "  Log:     %s\n", r.Log)
	if r.Secrets != nil && r.Secrets.PKI != nil {
		fmt.Fprintf(w, "  PKI:     %s\n", r.Secrets.PKI.Dir)
		fmt.Fprintf(w, "  CA cert: %s\n", r.Secrets.PKI.CACert)
	}
	if r.Secrets != nil && r.Secrets.Auth != nil {
		fmt.Fprintf(w, "  Auth:    %s (user %s)\n", r.Secrets.Auth.Dir, r.Secrets.Auth.User)
	}
}

// listenText says where the registry listens: the addresses, or every
// interface; and for a loopback registry, how to open it to the network.
func listenText(l *regconfig.Listen) string {
	if len(l.Addrs) == 1 {
		// "", 0.0.0.0 and :: all listen on every interface.
		if host, port, err := net.SplitHostPort(l.Addrs[0]); err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
			return "all interfaces, port " + port
		}
	}
	text := strings.Join(l.Addrs, ", ")
	switch {
	case l.Loopback && l.Why != "CONTAINER_REGISTRY_LISTEN":
		text += " (this host only; CONTAINER_REGISTRY_LISTEN=:: serves the network)"
	case l.Loopback:
		text += " (this host only)"
	}
	return text
}

// writeRestart writes what follows Restart's events (its stops were
// written as they happened).
func writeRestart(w io.Writer, r *server.RestartResult, script string) {
	if r != nil {
		writeStart(w, r.Start, script)
	}
}

// writeStop writes the result of a stop.
func writeStop(w io.Writer, r *server.StopResult) {
	if r == nil {
		return
	}
	if r.Stopped {
		fmt.Fprintf(w, "Registry stopped\n")
	} else {
		fmt.Fprintf(w, "Registry not running\n")
	}
}

// writeStatus writes the result of status.
func writeStatus(w io.Writer, r *server.StatusResult, script string) {
	if !r.Running {
		fmt.Fprintf(w, "Registry not running\n")
		switch {
		case r.StalePidFile != "" && r.StaleAlive:
			fmt.Fprintf(w, "  (stale pid file %s: pid %d is now another program, not the registry; `%s start` cleans it up)\n", r.StalePidFile, r.StalePid, script)
		case r.StalePidFile != "" && r.StalePid == 0:
			fmt.Fprintf(w, "  (unreadable pid file %s; `%s start` cleans it up)\n", r.StalePidFile, script)
		case r.StalePidFile != "":
			fmt.Fprintf(w, "  (stale pid file %s: pid %d is gone; `%s start` cleans it up)\n", r.StalePidFile, r.StalePid, script)
		}
		if r.Foreign {
			fmt.Fprintf(w, "  (but a registry not started from %s answers at %s)\n", r.Storage, r.URL)
		}
		return
	}
	fmt.Fprintf(w, "Registry running (pid %d)\n", r.Pid)
	fmt.Fprintf(w, "  URL:     %s\n", r.URL)
	fmt.Fprintf(w, "  Mode:    %s\n", r.Mode)
	fmt.Fprintf(w, "  Storage: %s\n", r.Storage)
	writeBackend(w, r)
	if r.Healthy {
		fmt.Fprintf(w, "  Status:  healthy\n")
		return
	}
	fmt.Fprintf(w, "  Status:  not responding\n")
	if r.Probe != "" {
		fmt.Fprintf(w, "  (%s)\n", r.Probe)
	}
	fmt.Fprintf(w, "  Log:     %s\n", r.Log)
}

// writeBackend writes the shared backend of a replica and its peers.
func writeBackend(w io.Writer, r *server.StatusResult) {
	if r.Backend == "" {
		return
	}
	fmt.Fprintf(w, "  Backend: %s\n", r.Backend)
	switch {
	case r.PeersErr != "":
		fmt.Fprintf(w, "  Peers:   unknown (%s)\n", r.PeersErr)
	case len(r.Peers) == 0:
		fmt.Fprintf(w, "  Peers:   none\n")
	default:
		for i, p := range r.Peers {
			label := "  Peers:  "
			if i > 0 {
				label = "         "
			}
			fmt.Fprintf(w, "%s %s (host %s, pid %d, seen %s)\n", label, p.URL, p.Host, p.Pid, p.Seen.Format(time.RFC3339))
		}
	}
}

// writeDryRun writes what gc's dry run found.
func writeDryRun(w io.Writer, e server.DryRun, script string) {
	fmt.Fprintf(w, "Garbage collection dry run (%s):\n", e.Where)
	r := e.Report
	if r.Empty() {
		fmt.Fprintf(w, "  Nothing to collect: every blob is referenced.\n")
	} else {
		writeRemovals(w, r)
		fmt.Fprintf(w, "Would remove %d blob(s) and %d manifest(s)%s: %s\n", len(r.Blobs), len(r.Manifests), uploadsNote(r), humanBytes(r.Bytes))
	}
	if e.UntaggedKept > 0 {
		fmt.Fprintf(w, "  %d manifest(s) no tag references are kept (%s more with --delete-untagged):\n    %s gc --delete-untagged\n",
			e.UntaggedKept, humanBytes(e.UntaggedBytes), script)
	}
}

// gcQuestion is what gc asks on a terminal after the dry run.
const gcQuestion = "\nRemove it? Pushes wait during the collection, pulls go on. [y/N] "

// writeGC writes what follows gc's events: how to go on after a dry run,
// or that the question was answered no; and what a failed start again
// prepared.
func writeGC(w io.Writer, r *server.GCResult, script string) {
	if r == nil {
		return
	}
	switch {
	case r.DryRunOnly():
		fmt.Fprintf(w, "\nDry run only: nothing was removed.\nTo remove it, run: %s gc --yes", script)
		if r.RemoveUntagged {
			fmt.Fprintf(w, " --delete-untagged")
		}
		fmt.Fprintln(w)
	case r.Declined:
		fmt.Fprintf(w, "Aborted: nothing was removed.\n")
	}
}

// writeRemovals lists what a collection removes, largest blobs first, at
// most 50 blobs.
func writeRemovals(w io.Writer, r *gc.Report) {
	for _, m := range r.Manifests {
		fmt.Fprintf(w, "  manifest %s (no tag)\n", m.Name)
	}
	for _, u := range r.Uploads {
		fmt.Fprintf(w, "  partial upload %s %s\n", u.Name, humanBytes(u.Bytes))
	}
	blobs := append([]gc.Removal(nil), r.Blobs...)
	sort.SliceStable(blobs, func(i, j int) bool { return blobs[i].Bytes > blobs[j].Bytes })
	const max = 50
	for i, b := range blobs {
		if i == max {
			fmt.Fprintf(w, "  ... and %d more blob(s)\n", len(blobs)-max)
			break
		}
		fmt.Fprintf(w, "  blob %s %s\n", b.Name, humanBytes(b.Bytes))
	}
}

// inUseNote is "; N digest(s) kept for pushes in flight" when any are.
func inUseNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d digest(s) kept for pushes in flight", n)
}

// uploadsNote is " plus N partial upload(s)" when there are any.
func uploadsNote(r *gc.Report) string {
	if len(r.Uploads) == 0 {
		return ""
	}
	return fmt.Sprintf(" plus %d partial upload(s)", len(r.Uploads))
}

// humanBytes formats n as "1.5 MiB (1572864 bytes)".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%s (%d bytes)", tasks.HumanBytes(n), n)
}
