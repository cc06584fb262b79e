//go:build !ocireg_testhooks

package server

import "time"

// sharedGCGrace is gcGrace: only test builds change it.
func sharedGCGrace() time.Duration { return gcGrace }
