//go:build !ocireg_testhooks

package serve

// serverTimeouts are DefaultTimeouts: only test builds change them.
func serverTimeouts() Timeouts { return DefaultTimeouts }
