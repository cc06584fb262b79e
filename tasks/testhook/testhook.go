// Package testhook lets the end-to-end fault tests freeze the tool at a
// named point of its work, so that a crash (SIGKILL of the server or of the
// tool itself) lands exactly there instead of wherever a timer happens to
// fall. It is inert unless the environment variable named by EnvVar is set;
// nothing but tests (tests/faults_test.go) sets it.
//
// The value is "POINT[#N]:MARKER": the N-th time (default 1) the tool
// reaches POINT, it writes its pid to the file MARKER and waits until that
// file is removed (the test's signal to continue), at most MaxPause.
//
// Points:
//
//	push-before-index  push put every manifest of an image by digest and is
//	                   about to write the first tag's index
//	gc-delete          gc removed one more path of a real (not dry) sweep
package testhook

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvVar names the variable that arms a pause point.
const EnvVar = "OCIREG_TOOL_TEST_PAUSE_AT"

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
	if err := os.WriteFile(marker, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
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
