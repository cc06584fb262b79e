// Package server runs the local registry: Serve is the embedded
// distribution server in the foreground; Start, Restart, Stop and Status
// manage it as a detached process of one storage directory and port; GC
// collects its storage. The lifecycle tasks print nothing: each returns a
// result struct and reports what happens on the way as events (events.go)
// through Options.Events; cmd/ renders both.
package server
