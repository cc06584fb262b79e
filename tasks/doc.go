// Package tasks holds the small query and delete operations (catalog,
// list, tags, info, delete with its manifest pruning) and the errors every
// task shares (UsageError, SilentError). Each larger operation has its own
// package below (push, importer, server, verify); they reach a registry
// only through registry.Target, return result structs, report progress as
// events and never print: cmd/ocireg-tool renders.
package tasks
