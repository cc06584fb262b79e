//go:build !ocireg_testhooks

package gc

import "time"

// UploadGrace is uploadGrace: only test builds change it.
func UploadGrace() time.Duration { return uploadGrace }
