package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// uiBenchmarks are the Go benchmarks of the registry browser
// (tasks/ui/bench_test.go), each with the row it becomes.
var uiBenchmarks = []struct {
	bench, name, goal string
	max               time.Duration // 0: reported only
	iterations        int           // per run
}{
	{"BenchmarkIndexPage", "registry browser: index page, 1,000 repositories × 20 tags (cache warm)", "≤ 100 ms", 100 * time.Millisecond, 10},
	{"BenchmarkIndexAllRepos", "  all 1,000 × 20 in one page (render only)", "report", 0, 10},
	{"BenchmarkIndexCold", "  first index page after start (every tag and manifest read from storage)", "report", 0, 1},
}

// measureUI runs the registry browser's Go benchmarks (in-process, on
// in-memory storage) b.runs times each (the cold page once).
func (b *bench) measureUI() error {
	for _, ub := range uiBenchmarks {
		runs := b.runs
		if ub.iterations == 1 {
			runs = 1
		}
		cmd := exec.CommandContext(b.ctx, "go", "test", "-run", "^$", "-bench", "^"+ub.bench+"$",
			"-benchtime", fmt.Sprintf("%dx", ub.iterations), "-count", strconv.Itoa(runs), "./tasks/ui")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench %s: %w\n%s", ub.bench, err, out)
		}
		times, err := benchTimes(out, ub.bench)
		if err != nil {
			return err
		}
		r := row{Name: ub.name, Ours: seconds(times), Unit: unitSeconds, Ratio: math.NaN(), Goal: ub.goal}
		if ub.max > 0 {
			r.Met = boolp(time.Duration(seconds(times).median()*float64(time.Second)) <= ub.max)
		}
		b.add(r)
	}
	return nil
}

// benchTimes reads the ns/op of every result line of name in go test output.
func benchTimes(out []byte, name string) ([]time.Duration, error) {
	var ds []time.Duration
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], name+"-") && f[0] != name {
			continue
		}
		for i := 1; i+1 < len(f); i++ {
			if f[i+1] == "ns/op" {
				ns, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %q: %w", name, sc.Text(), err)
				}
				ds = append(ds, time.Duration(ns))
			}
		}
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("%s: no result in the go test output:\n%s", name, out)
	}
	return ds, nil
}
