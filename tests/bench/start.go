package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// measureStart: `container-registry.sh start` vs launching docker-registry
// and polling /v2/ every 5 ms; the floor of the two Go process starts ours
// makes (each binary run to print its version); then the idle RSS of
// both, split into the binary's mapped pages and the rest.
func (b *bench) measureStart() error {
	o, err := b.newOurs("start", nil)
	if err != nil {
		return err
	}
	d, err := b.newDocker("start-docker")
	if err != nil {
		return err
	}
	runs := max(b.runs*2, 10)
	var ours, internal, base []time.Duration
	one := func(r registry, out *[]time.Duration) func() error {
		return func() error {
			t, err := r.Start(b.ctx)
			if err != nil {
				return err
			}
			*out = append(*out, t)
			if r == registry(o) {
				internal = append(internal, o.ReadyInternal)
			}
			return r.Stop()
		}
	}
	// A process start of each binary alone: exec, runtime and package
	// initialisation, exit.
	var execOurs, execBase []time.Duration
	execOnce := func(out *[]time.Duration, prog string, args ...string) func() error {
		return func() error {
			r, err := run(b.ctx, nil, prog, args...)
			if err != nil {
				return err
			}
			*out = append(*out, r.Elapsed)
			return nil
		}
	}
	for i := range runs {
		if err := orderFor(i, one(o, &ours), one(d, &base)); err != nil {
			return err
		}
		if err := orderFor(i, execOnce(&execOurs, o.tool, "version"), execOnce(&execBase, b.docker, "--version")); err != nil {
			return err
		}
	}
	ratio := seconds(ours).median() / seconds(base).median()
	b.add(row{Name: "start-to-ready", Ours: seconds(ours), Base: seconds(base), BaseName: "docker-registry launch + poll /v2/ every 5 ms", Unit: unitSeconds,
		Ratio: ratio, RatioText: "of docker-registry", Goal: "≤ 1.2× and ≤ 100 ms", Met: boolp(ratio <= 1.2 && seconds(ours).median() <= 0.1)})
	b.add(row{Name: "  of which launch of `serve` to ready (as start reports it)", Ours: seconds(internal), Unit: unitSeconds, Ratio: math.NaN(), Goal: "report"})
	// start-to-ready is two of ours against one launch of docker-registry.
	one1 := seconds(execOurs).median() / seconds(execBase).median()
	b.add(row{Name: "  one process start (`ocireg-tool version`; start makes two)", Ours: seconds(execOurs), Base: seconds(execBase), BaseName: "`docker-registry --version`", Unit: unitSeconds,
		Ratio: one1, RatioText: "of docker-registry's", Goal: "report"})

	// Idle memory: started, answered once, left alone for a moment.
	var oursRSS, baseRSS samples
	var split [2]string
	for _, r := range []registry{o, d} {
		if _, err := r.Start(b.ctx); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)
	for i, x := range []struct {
		r   registry
		out *samples
	}{{o, &oursRSS}, {d, &baseRSS}} {
		kb, err := procStatus(x.r.Pid(), "VmRSS")
		if err != nil {
			return err
		}
		*x.out = append(*x.out, float64(kb)/1024)
		split[i] = rssSplit(x.r.Pid())
		if err := x.r.Stop(); err != nil {
			return err
		}
	}
	rssRatio := oursRSS.median() / baseRSS.median()
	b.add(row{Name: "idle server RSS", Ours: oursRSS, Base: baseRSS, BaseName: "docker-registry", Unit: unitMiB,
		Ratio: rssRatio, RatioText: "of docker-registry", Goal: "≤ 1.25×", Met: boolp(rssRatio <= 1.25)})
	b.notef("idle RSS (VmRSS 2 s after start): ours %s; docker-registry %s. The binary's pages are what the process maps of its executable (text and read-only data): ours is %s, docker-registry's %s.",
		split[0], split[1], fileSize(o.tool), fileSize(b.docker))
	return nil
}

// rssSplit says how much of pid's RSS is its binary's mapped pages and how
// much the rest (heap, stacks, runtime), from /proc/<pid>/status.
func rssSplit(pid int) string {
	file, err1 := procStatus(pid, "RssFile")
	anon, err2 := procStatus(pid, "RssAnon")
	if err1 != nil || err2 != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB the binary's pages + %.1f MiB anonymous", float64(file)/1024, float64(anon)/1024)
}

// fileSize is the size of the file at path in MiB, as text.
func fileSize(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)))
}
