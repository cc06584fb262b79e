//go:build ocireg_testhooks

package gc

import (
	"os"
	"time"
)

// GraceEnv shortens gc's grace on a shared backend in test builds (tag
// ocireg_testhooks; release builds ignore it), e.g. "1s".
const GraceEnv = "OCIREG_TOOL_TEST_GC_GRACE"

// SharedGrace is Grace, or GraceEnv's duration.
func SharedGrace() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(GraceEnv)); err == nil && d >= 0 {
		return d
	}
	return Grace
}
