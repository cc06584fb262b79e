// Package server is the registry as an operation on one storage directory
// and port: Start, Restart, Stop and Status manage `ocireg-tool serve` (package
// serve) as a detached process; GC decides when a collection may run
// (it stops the registry, or holds the writes of every replica of a shared
// backend) and has package gc collect. It prints nothing: each task returns
// a result struct and reports what happens on the way as events (events.go)
// through Options.Events; cmd/ renders both.
package server
