// Command bench measures ocireg-tool side by side with what it replaces
// (Debian's docker-registry 2.8, skopeo, curl) and writes BENCHMARKS.md:
// ingest, cold push and re-push, start-to-ready, pull, memory, generate,
// promote and export against skopeo, online gc (alone and under a loop of
// pulls), storage growth under a retention policy and the cost of signing,
// each the median of several runs, each ratio against a
// baseline measured in the same run. `make bench` builds the tool and runs it; it is
// not part of CI. Everything runs on 127.0.0.1 with free ports below one
// temporary directory, and every server it starts is stopped at the end.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// bench is one benchmark run.
type bench struct {
	ctx       context.Context
	tool      string
	docker    string
	work      string
	runs      int
	layers    int
	layerSize int64

	big    blobFile // the ingest blob, also the memory test's layer
	tree   *tree    // the push/pull deploy tree
	gcTree *tree    // many small blobs for gc
	gc     *gcStore // the garbage store gc and gcpull collect
	scale  *tree    // the many-images tree of scale and small (scale.go)

	servers     []registry
	pushed      *ours // holds the pushed tree after measurePush
	lastPushOut string
	rows        []row
	notes       []string
	started     time.Time
	loadBefore  string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(b.started).Round(time.Second), fmt.Sprintf(format, args...))
}

func (b *bench) notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *bench) add(r row) {
	b.rows = append(b.rows, r)
	var buf bytes.Buffer
	textTable(&buf, []row{r})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	b.logf("%s", strings.Join(strings.Fields(lines[len(lines)-1]), " "))
}

func (b *bench) newOurs(name string, vars map[string]string) (*ours, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	o, err := newOurs(b.ctx, b.tool, dir, vars)
	if err != nil {
		return nil, err
	}
	b.servers = append(b.servers, o)
	return o, nil
}

func (b *bench) newDocker(name string) (*dockerRegistry, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d, err := newDockerRegistry(b.docker, dir)
	if err != nil {
		return nil, err
	}
	b.servers = append(b.servers, d)
	return d, nil
}

// stopAll stops every server this run started.
func (b *bench) stopAll() {
	for _, s := range b.servers {
		if err := s.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping %s: %v\n", s.Addr(), err)
		}
	}
}

var allMeasurements = []string{"ingest", "push", "pull", "start", "memory", "generate", "gc", "gcpull", "growth", "ui", "referrers", "transfer", "s3", "listing", "scale", "small", "sign"}

func main() {
	tool := flag.String("tool", "build/ocireg-tool", "the ocireg-tool binary to measure")
	out := flag.String("out", "BENCHMARKS.md", "report to write (empty: none)")
	runs := flag.Int("runs", 5, "runs per measurement (medians; start and generate use twice as many, at least 10)")
	ingestMiB := flag.Int64("ingest-mib", 1024, "size of the ingest blob, also the memory test's single layer (MiB)")
	images := flag.Int("images", 4, "images per machine in the push tree")
	layers := flag.Int("layers", 3, "layers per image in the push tree")
	layerMiB := flag.Int64("layer-mib", 16, "size of each push-tree layer (MiB)")
	gcImages := flag.Int("gc-images", 25, "images per machine in the gc store")
	gcLayers := flag.Int("gc-layers", 20, "layers per image in the gc store (4 KiB each)")
	only := flag.String("only", strings.Join(allMeasurements, ","), "comma-separated measurements to run")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	dockerBin := flag.String("docker-registry", "/usr/bin/docker-registry", "Debian's docker-registry binary (the baseline server)")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	b := &bench{ctx: ctx, runs: *runs, docker: *dockerBin, layers: *layers, layerSize: *layerMiB << 20, started: time.Now()}
	var err error
	if b.tool, err = filepath.Abs(*tool); err != nil {
		fatal(err)
	}
	for _, p := range []string{b.tool, b.docker} {
		if _, err := os.Stat(p); err != nil {
			fatal(fmt.Errorf("%s: %w (make bench builds the tool and installs docker-registry)", p, err))
		}
	}
	for _, p := range []string{"skopeo", "curl", "cp"} {
		if _, err := exec.LookPath(p); err != nil {
			fatal(fmt.Errorf("%s is required: %w", p, err))
		}
	}
	b.loadBefore = loadAvg()
	b.work, err = os.MkdirTemp("", "ocireg-bench-")
	if err != nil {
		fatal(err)
	}
	code := 0
	if err := b.runAll(*only, *ingestMiB<<20, *images, *gcImages, *gcLayers); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		code = 1
	}
	b.stopAll()
	if *keep {
		fmt.Fprintf(os.Stderr, "kept %s\n", b.work)
	} else {
		os.RemoveAll(b.work)
	}
	if len(b.rows) > 0 {
		fmt.Println()
		textTable(os.Stdout, b.rows)
		if *out != "" && code == 0 {
			if err := os.WriteFile(*out, []byte(b.report()), 0o644); err != nil {
				fatal(err)
			}
			fmt.Printf("\nwrote %s\n", *out)
		}
	}
	os.Exit(code)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func (b *bench) runAll(only string, bigSize int64, images, gcImages, gcLayers int) error {
	want := map[string]bool{}
	for _, m := range strings.Split(only, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if !slices.Contains(allMeasurements, m) {
			return fmt.Errorf("-only: unknown measurement %q (have %s)", m, strings.Join(allMeasurements, ", "))
		}
		want[m] = true
	}
	if want["pull"] {
		want["push"] = true // pull reads what push left
	}
	if want["ingest"] || want["memory"] || want["s3"] {
		b.logf("writing the %s blob", sizeText(bigSize))
		p := filepath.Join(b.work, "big.blob")
		d, err := writeRandomFile(p, bigSize, 1)
		if err != nil {
			return err
		}
		b.big = blobFile{Path: p, Digest: d, Size: bigSize}
	}
	if want["push"] || want["s3"] || want["sign"] || want["transfer"] {
		b.logf("writing the deploy tree (%d machines × %d images × %d layers of %s)", len(machines), images, b.layers, sizeText(b.layerSize))
		t, err := writeTree(filepath.Join(b.work, "deploy-images"), "bench-app", images, b.layers, b.layerSize, 100)
		if err != nil {
			return err
		}
		b.tree = t
	}
	if want["gc"] || want["gcpull"] {
		b.logf("writing the gc tree (%d machines × %d images × %d layers of 4 KiB)", len(machines), gcImages, gcLayers)
		t, err := writeTree(filepath.Join(b.work, "gc-images"), "gc-app", gcImages, gcLayers, 4<<10, 5_000_000)
		if err != nil {
			return err
		}
		b.gcTree = t
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"ingest", b.measureIngest},
		{"push", b.measurePush},
		{"pull", b.measurePull},
		{"start", b.measureStart},
		{"memory", b.measureMemory},
		{"generate", b.measureGenerate},
		{"gc", b.measureGC},
		{"gcpull", b.measureGCPull},
		{"growth", b.measureGrowth},
		{"ui", b.measureUI},
		{"referrers", b.measureReferrers},
		{"transfer", b.measureTransfer},
		{"s3", b.measureS3},
		{"listing", b.measureListing},
		{"scale", b.measureScale},
		{"small", b.measureSmall},
		{"sign", b.measureSign},
	}
	for _, s := range steps {
		if !want[s.name] {
			continue
		}
		if err := b.ctx.Err(); err != nil {
			return err
		}
		b.logf("== %s", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// machineInfo describes where the numbers come from.
func (b *bench) machineInfo() []string {
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown"
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	goVersion := firstLine(exec.Command("go", "version"))
	if goVersion == "" {
		goVersion = runtime.Version() + " (the bench program's)"
	}
	return []string{
		fmt.Sprintf("date: %s", b.started.UTC().Format("2006-01-02 15:04 MST")),
		fmt.Sprintf("nproc: %d; CPU: %s", runtime.NumCPU(), cpu),
		fmt.Sprintf("kernel: %s", kernel),
		fmt.Sprintf("Go: %s", goVersion),
		fmt.Sprintf("ocireg-tool: %s", firstLine(exec.Command(b.tool, "version"))),
		fmt.Sprintf("baselines: %s; %s; %s", firstLine(exec.Command(b.docker, "--version")), firstLine(exec.Command("skopeo", "--version")), firstLine(exec.Command("curl", "--version"))),
		fmt.Sprintf("load average at start: %s; at end: %s", b.loadBefore, loadAvg()),
	}
}

func firstLine(cmd *exec.Cmd) string {
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
