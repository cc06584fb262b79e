//go:build ocireg_testhooks

package testhook

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxPause bounds a pause: a test that forgets to release or kill the
// tool does not leave it hanging.
const MaxPause = 2 * time.Minute

var (
	mu     sync.Mutex
	counts = map[string]int{}
)

// Pause blocks at point when EnvVar arms it (see the package comment).
func Pause(point string) {
	v := os.Getenv(EnvVar)
	if v == "" {
		return
	}
	spec, marker, ok := strings.Cut(v, ":")
	if !ok || marker == "" {
		return
	}
	name, nth := spec, 1
	if p, n, ok := strings.Cut(spec, "#"); ok {
		name = p
		if k, err := strconv.Atoi(n); err == nil && k > 0 {
			nth = k
		}
	}
	if name != point {
		return
	}
	mu.Lock()
	counts[point]++
	hit := counts[point] == nth
	mu.Unlock()
	if !hit {
		return
	}
	// Written aside and renamed: a test that sees the marker reads the
	// whole pid, never an empty file.
	tmp := marker + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return
	}
	if err := os.Rename(tmp, marker); err != nil {
		return
	}
	deadline := time.Now().Add(MaxPause)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(marker); os.IsNotExist(err) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
