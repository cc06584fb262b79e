// Package tasks holds what every task shares: the errors that carry an
// exit status (UsageError, SilentError) and byte formatting. Each
// operation has its own package below (query, remove, push, importer,
// server, verify, labels); operations import primitives (registry,
// deploy, imageref, platform, gitinfo, regauth, regconfig, runstate,
// events), never each other. They reach a registry only through
// registry.Target, return result structs, report progress as events and
// never print: cmd/ocireg-tool renders.
package tasks
