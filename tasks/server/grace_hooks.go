//go:build ocireg_testhooks

package server

import (
	"os"
	"time"
)

// GCGraceEnv shortens gc's grace on a shared backend in test builds (tag
// ocireg_testhooks; release builds ignore it), e.g. "1s".
const GCGraceEnv = "OCIREG_TOOL_TEST_GC_GRACE"

// sharedGCGrace is gcGrace, or GCGraceEnv's duration.
func sharedGCGrace() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(GCGraceEnv)); err == nil && d >= 0 {
		return d
	}
	return gcGrace
}
