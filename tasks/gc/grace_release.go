//go:build !ocireg_testhooks

package gc

import "time"

// SharedGrace is gcGrace: only test builds change it.
func SharedGrace() time.Duration { return Grace }
