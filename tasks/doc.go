// Package tasks holds what every task shares: the errors that carry an
// exit status (UsageError, SilentError) and byte formatting. Each
// operation has its own package below (query, remove, push, importer,
// server, serve, verify, labels, sample); operations import primitives
// (registry, deploy, imageref, platform, gitinfo, regauth, regconfig,
// regstore, redisconn, taglock, referrers, gc, replica, runstate, ui,
// events), never each other (internal/depcheck enforces it). They reach a registry only through
// registry.Target, return result structs, report progress as events and
// never print: cmd/ocireg-tool renders.
package tasks
