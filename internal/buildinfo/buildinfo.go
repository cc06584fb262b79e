// Package buildinfo holds what the build stamps into the binary.
package buildinfo

// Version is the tool's version, set at build time with
// -ldflags "-X github.com/ocireg-tool/ocireg-tool/internal/buildinfo.Version=…"
// (the Makefile and the layer's tool recipe do).
var Version = "dev"
