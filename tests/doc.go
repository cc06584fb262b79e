// Package tests holds ocireg-tool's end-to-end tests: they generate the
// helper script with the real binary and drive it as a user would, checking
// results with independent clients (skopeo, curl, openssl). Every program
// or fixture they need from outside Go is asked for through
// internal/testtool: missing, it skips the test outside CI and fails it in
// CI.
package tests
