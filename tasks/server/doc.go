// Package server is the registry as an operation on one storage directory
// and port: Start, Restart, Stop and Status manage `ocireg-tool serve` (package
// serve) as a detached process; GC and Prune run a collection of the
// storage with the registry online (package collect holds the writes of
// every registry serving it) and stop the registry only when the storage
// is too full to take the hold. It prints nothing: each task returns
// a result struct and reports what happens on the way as events (events.go)
// through Options.Events; cmd/ renders both.
package server
