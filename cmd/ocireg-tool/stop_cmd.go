package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// StopCmd stops the registry.
type StopCmd struct {
	JSON bool `name:"json" help:"Print the result as JSON (no progress lines)."`
}

// Run stops the registry; stopping a stopped registry is not an error.
func (cmd StopCmd) Run(app *App) error {
	o, c, err := serverOptions(app, cmd.JSON)
	if err != nil {
		return err
	}
	res, err := server.Stop(c, o)
	return renderResult(app, cmd.JSON, res, err, func() { writeStop(app.Stdout, res) })
}
