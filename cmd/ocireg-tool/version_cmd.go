package main

import (
	"fmt"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version injected at build time.
func (VersionCmd) Run(app *App) error {
	fmt.Fprintf(app.Stdout, "ocireg-tool %s\n", generator.Version)
	return nil
}
