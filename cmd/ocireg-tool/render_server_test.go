package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/tasks/collect"
	"github.com/ocireg-tool/ocireg-tool/tasks/gc"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// The results and events below are what the server tasks return and emit
// in each situation; the golden files pin the text a user (and a CI script
// grepping it) reads, and the JSON a program reads.

const goldenScript = "/STORAGE/container-registry.sh"

func insecureStart() *server.StartResult {
	return &server.StartResult{URL: "http://localhost:5000", UI: "http://localhost:5000/ui/", Mode: "insecure (HTTP)", Storage: "/STORAGE",
		Config: "/STORAGE/registry-config.yml", Log: "/STORAGE/registry-5000.log"}
}

// launched is r after a successful launch.
func launched(r *server.StartResult, pid int) *server.StartResult {
	r.Launched, r.Pid, r.Ready = true, pid, 37*time.Millisecond+412*time.Microsecond
	r.Listen = &regconfig.Listen{Addrs: []string{"127.0.0.1:5000", "[::1]:5000"}, Loopback: true, Why: "loopback URL"}
	return r
}

func secureStart(auth bool) *server.StartResult {
	r := insecureStart()
	r.URL, r.Secure, r.Mode = "https://localhost:5000", true, "secure (TLS only)"
	r.Secrets = &generator.SecretsReport{PKI: &generator.PKIReport{Dir: "/STORAGE/pki", CACert: "/STORAGE/pki/ca.crt",
		ServerCert: "/STORAGE/pki/server.crt", CreatedCA: true, CreatedServer: true}}
	if auth {
		r.Mode = "secure (TLS + auth)"
		r.Secrets.Auth = &generator.AuthReport{Dir: "/STORAGE/auth", User: "yocto", PasswordFile: "/STORAGE/auth/password",
			Source: "generated", Changed: true}
	}
	return r
}

func gcReport(blobs int, removed bool) *gc.Report {
	r := &gc.Report{Removed: removed}
	for i := 0; i < blobs; i++ {
		size := int64(100 + (i%7)*1000)
		name := fmt.Sprintf("sha256:%064x", i+1)
		r.Blobs = append(r.Blobs, gc.Removal{Path: "/docker/registry/v2/blobs/sha256/" + name[7:9] + "/" + name[7:] + "/data", Name: name, Bytes: size})
		r.Bytes += size
	}
	return r
}

type renderCase struct {
	name   string
	events []any             // emitted by the task, in order
	result any               // returned by the task (the JSON golden)
	final  func(w io.Writer) // what the command writes after the task returned
}

func renderCases() []renderCase {
	start := launched(insecureStart(), 4242)
	secure := launched(secureStart(true), 4243)
	secure.StalePidFile, secure.StalePid, secure.WroteConfig = "/STORAGE/registry-5000.pid", 999, true
	secure.Listen = &regconfig.Listen{Addrs: []string{"127.0.0.1:5000"}, Loopback: true, Why: "CONTAINER_REGISTRY_LISTEN"}
	tlsOnly := launched(secureStart(false), 4244)
	tlsOnly.Listen = &regconfig.Listen{Addrs: []string{":5000"}, Why: "default"}
	tlsOnly.Secrets.PKI.CreatedCA, tlsOnly.Secrets.PKI.CreatedServer = false, false
	tlsOnly.Secrets.PKI.Missing = []string{"DNS:buildhost"}
	already := insecureStart()
	already.Already, already.Pid = true, 4242
	failed := insecureStart() // the port was taken: nothing launched
	failed.StalePidFile, failed.WroteConfig = "/STORAGE/registry-5000.pid", true

	restart := &server.RestartResult{Stopped: []*server.StopResult{{Stopped: true, Pid: 4200}}, Start: launched(insecureStart(), 4242)}
	stopped := &server.StopResult{Stopped: true, Pid: 4242, Killed: true}
	notRunning := &server.StopResult{StalePidFile: "/STORAGE/registry-5000.pid"}

	healthy := &server.StatusResult{Running: true, Healthy: true, Pid: 4242, URL: "https://localhost:5000", Mode: "secure (TLS + auth)",
		Storage: "/STORAGE", Log: "/STORAGE/registry-5000.log"}
	peered := *healthy
	peered.Backend = "s3://registry/yocto?endpoint=http://s3.lab:8333&region=us-east-1"
	peered.Peers = []replica.Replica{{ID: "build2_5000", URL: "build2:5000", Host: "build2", Pid: 7311,
		Started: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Seen: time.Date(2026, 11, 27, 9, 30, 2, 0, time.UTC)}}
	hung := *healthy
	hung.Healthy, hung.Probe = false, `Get "https://localhost:5000/v2/": context deadline exceeded`
	down := &server.StatusResult{URL: "http://localhost:5000", Mode: "insecure (HTTP)", Storage: "/STORAGE", Log: "/STORAGE/registry-5000.log",
		StalePidFile: "/STORAGE/registry-5000.pid", StalePid: 999, Foreign: true}
	reused := &server.StatusResult{URL: "http://localhost:5000", Mode: "insecure (HTTP)", Storage: "/STORAGE", Log: "/STORAGE/registry-5000.log",
		StalePidFile: "/STORAGE/registry-5000.pid", StalePid: 999, StaleAlive: true}

	dry := gcReport(53, false)
	dry.Manifests = []gc.Removal{{Path: "/docker/registry/v2/repositories/yocto/app/_manifests/revisions/sha256/ab/link", Name: "yocto/app@sha256:ab", Bytes: 71}}
	dry.Uploads = []gc.Removal{{Path: "/docker/registry/v2/repositories/yocto/app/_uploads/0b1c", Name: "yocto/app upload 0b1c", Bytes: 5 << 20}}
	dry.Bytes += 71 + 5<<20
	gcRes := func(where string, r collect.Result) *server.GCResult {
		return &server.GCResult{Where: where, Result: r}
	}
	dryOnly := gcRes("/STORAGE/data", collect.Result{DryRun: dry})
	dryOnlyEvents := []any{server.DryRun{Where: "/STORAGE/data", Report: dry}}

	small := gcReport(3, false)
	removed := *small
	removed.Removed = true
	gcYes := gcRes("/STORAGE/data", collect.Result{RemoveUntagged: true, DryRun: small, Removed: &removed, Held: []string{"build1_5000"}, InUse: 3})

	gcStop := &server.StopResult{Stopped: true, Pid: 4242}
	gcStart := launched(insecureStart(), 4343)
	gcFull := gcRes("/STORAGE/data", collect.Result{DryRun: small, Removed: &removed})
	gcFull.Stopped, gcFull.Restarted = gcStop, gcStart

	gcShared := gcRes("s3aws storage", collect.Result{DryRun: small, Removed: &removed, Held: []string{"build1_5000", "build2_5000"}})
	empty := &gc.Report{}
	untagged := gcRes("s3aws storage", collect.Result{DryRun: empty, UntaggedKept: 2, UntaggedBytes: 3 << 20})
	declined := gcRes("/STORAGE/data", collect.Result{DryRun: small, Declined: true})

	return []renderCase{
		{"start-insecure", []any{server.Launching{Start: start}}, start, func(w io.Writer) { writeStart(w, start, goldenScript) }},
		{"start-secure-auth", []any{server.Launching{Start: secure}}, secure, func(w io.Writer) { writeStart(w, secure, goldenScript) }},
		{"start-secure-tls-only", []any{server.Launching{Start: tlsOnly}}, tlsOnly, func(w io.Writer) { writeStart(w, tlsOnly, goldenScript) }},
		{"start-already-running", nil, already, func(w io.Writer) { writeStart(w, already, goldenScript) }},
		{"start-failed-before-launch", nil, failed, func(w io.Writer) { writeStart(w, failed, goldenScript) }},
		{"restart", []any{server.Stopping{Pid: 4200}, server.Stopped{Stop: restart.Stopped[0]}, server.Launching{Start: restart.Start}},
			restart, func(w io.Writer) { writeRestart(w, restart, goldenScript) }},
		{"stop", []any{server.Stopping{Pid: 4242}, server.Killing{Pid: 4242, After: 15 * time.Second}}, stopped, func(w io.Writer) { writeStop(w, stopped) }},
		{"stop-not-running", nil, notRunning, func(w io.Writer) { writeStop(w, notRunning) }},
		{"status-healthy", nil, healthy, func(w io.Writer) { writeStatus(w, healthy, goldenScript) }},
		{"status-replica", nil, &peered, func(w io.Writer) { writeStatus(w, &peered, goldenScript) }},
		{"status-not-responding", nil, &hung, func(w io.Writer) { writeStatus(w, &hung, goldenScript) }},
		{"status-not-running", nil, down, func(w io.Writer) { writeStatus(w, down, goldenScript) }},
		{"status-pid-reused", nil, reused, func(w io.Writer) { writeStatus(w, reused, goldenScript) }},
		{"gc-dry-run-only", dryOnlyEvents, dryOnly, func(w io.Writer) { writeGC(w, dryOnly, goldenScript) }},
		{"gc-yes", []any{server.WritesHeld{Storage: "/STORAGE/data", Registries: []string{"build1_5000"}, InUse: 3},
			server.DryRun{Where: "/STORAGE/data", Report: small}, server.WritesResumed{}, server.Collected{Removed: &removed}},
			gcYes, func(w io.Writer) { writeGC(w, gcYes, goldenScript) }},
		{"gc-yes-storage-full", []any{server.SweepStopping{Why: "the storage is full: it cannot take the request to hold writes"},
			server.Stopping{Pid: 4242}, server.Stopped{Stop: gcStop}, server.DryRun{Where: "/STORAGE/data", Report: small},
			server.Restarting{}, server.Launching{Start: gcStart}, server.Started{Start: gcStart}, server.Collected{Removed: &removed}},
			gcFull, func(w io.Writer) { writeGC(w, gcFull, goldenScript) }},
		{"gc-yes-replicas", []any{server.WritesHeld{Storage: "s3aws storage", Registries: []string{"build1_5000", "build2_5000"}},
			server.DryRun{Where: "s3aws storage", Report: small}, server.WritesResumed{}, server.Collected{Removed: &removed}},
			gcShared, func(w io.Writer) { writeGC(w, gcShared, goldenScript) }},
		{"gc-nothing-untagged-kept", []any{server.DryRun{Where: "s3aws storage", Report: empty, UntaggedKept: 2, UntaggedBytes: 3 << 20}},
			untagged, func(w io.Writer) { writeGC(w, untagged, goldenScript) }},
		{"gc-declined", []any{server.DryRun{Where: "/STORAGE/data", Report: small}, gcQuestion},
			declined, func(w io.Writer) { writeGC(w, declined, goldenScript) }},
	}
}

func TestServerRenderGolden(t *testing.T) {
	for _, tc := range renderCases() {
		t.Run(tc.name, func(t *testing.T) {
			var text bytes.Buffer
			sink := &serverText{w: &text, script: goldenScript}
			for _, e := range tc.events {
				if q, ok := e.(string); ok { // what gc asks on a terminal
					text.WriteString(q + "n\n")
					continue
				}
				sink.Emit(e)
			}
			tc.final(&text)
			checkGolden(t, "server/"+tc.name+".txt", text.String())

			var js bytes.Buffer
			if err := writeJSON(&js, tc.result); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "server/"+tc.name+".json", js.String())
		})
	}
}

// The words the drop-in contract promises scripts are in the text.
func TestServerRenderContractWords(t *testing.T) {
	want := map[string][]string{
		"start-insecure":        {"Registry started (pid 4242, ready in 37ms)", "Stop it with: " + goldenScript + " stop", "Listen:  127.0.0.1:5000, [::1]:5000 (this host only"},
		"start-secure-auth":     {"Starting SECURE container registry", "https://localhost:5000", "secure (TLS + auth)", "container-registry-ca"},
		"start-already-running": {"Registry already running (pid 4242)"},
		"restart":               {"Registry stopped", "Registry started"},
		"stop":                  {"Registry stopped", "SIGKILL"},
		"stop-not-running":      {"Registry not running"},
		"status-healthy":        {"Registry running (pid 4242)", "healthy", "secure (TLS + auth)"},
		"status-not-responding": {"not responding", "context deadline exceeded"},
		"status-replica":        {"Backend: s3://registry/yocto", "Peers:   build2:5000 (host build2, pid 7311"},
		"status-not-running":    {"Registry not running", "stale pid file"},
		"status-pid-reused":     {"Registry not running", "pid 999 is now another program"},
		"gc-dry-run-only":       {"Would remove 53 blob(s) and 1 manifest(s) plus 1 partial upload(s)", "... and 3 more blob(s)", "gc --yes"},
		"gc-yes-replicas":       {"Pushes wait while the collection sweeps (pulls go on)", "build1_5000, build2_5000", "Pushes resume"},
		"gc-yes":                {"3 digest(s) kept for pushes in flight", "Garbage collection complete: removed 3 blob(s)"},
	}
	for _, tc := range renderCases() {
		words, ok := want[tc.name]
		if !ok {
			continue
		}
		var text bytes.Buffer
		sink := &serverText{w: &text, script: goldenScript}
		for _, e := range tc.events {
			sink.Emit(e)
		}
		tc.final(&text)
		for _, w := range words {
			if !strings.Contains(text.String(), w) {
				t.Errorf("%s: no %q in\n%s", tc.name, w, text.String())
			}
		}
	}
}
