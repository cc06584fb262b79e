//go:build !ocireg_testhooks

package testhook

// Pause does nothing: release builds carry no pause points.
func Pause(string) {}
