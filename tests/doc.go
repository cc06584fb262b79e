// Package tests holds ocireg-tool's end-to-end tests: they generate the
// helper script with the real binary and drive it as a user would, checking
// results with independent clients (skopeo, curl, openssl).
package tests
