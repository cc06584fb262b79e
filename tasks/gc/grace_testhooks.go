//go:build ocireg_testhooks

package gc

import (
	"os"
	"time"
)

// GraceEnv shortens gc's upload grace in test builds (tag
// ocireg_testhooks; release builds ignore it), e.g. "1s".
const GraceEnv = "OCIREG_TOOL_TEST_GC_GRACE"

// UploadGrace is uploadGrace, or GraceEnv's duration.
func UploadGrace() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(GraceEnv)); err == nil && d >= 0 {
		return d
	}
	return uploadGrace
}
