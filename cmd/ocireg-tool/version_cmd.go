package main

import (
	"fmt"

	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
)

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version injected at build time.
func (VersionCmd) Run(app *App) error {
	fmt.Fprintf(app.Stdout, "ocireg-tool %s\n", buildinfo.Version)
	return nil
}
