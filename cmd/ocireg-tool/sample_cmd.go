package main

import (
	"fmt"

	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// SampleDeployCmd writes a small sample deploy tree (hidden; for `make
// run` and tests).
type SampleDeployCmd struct {
	Dest string `name:"dest" required:"" help:"DEPLOY_DIR_IMAGES directory to write the machines into."`
}

// Run writes the default sample builds.
func (s *SampleDeployCmd) Run(app *App) error {
	dirs, err := sample.WriteTree(s.Dest, sample.DefaultBuilds())
	if err != nil {
		return err
	}
	for _, d := range dirs {
		fmt.Fprintf(app.Stdout, "wrote %s\n", d)
	}
	return nil
}
