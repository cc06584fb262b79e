// Package tasks does the registry work of ocireg-tool: serving the embedded
// registry, starting and stopping it, pushing, importing, listing, deleting
// and garbage-collecting. Sub-packages hold the larger rooms. Nothing here
// renders generated files; that is package generator's job.
package tasks
