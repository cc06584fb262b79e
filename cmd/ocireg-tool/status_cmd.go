package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// StatusCmd tells whether the registry runs and answers.
type StatusCmd struct {
	JSON bool `name:"json" help:"Print the status as JSON."`
}

// Run exits 0 only when the registry runs and /v2/ answers.
func (cmd StatusCmd) Run(app *App) error {
	o, c, err := serverOptions(app, cmd.JSON)
	if err != nil {
		return err
	}
	res, err := server.Status(app.Ctx, c, o)
	if err := renderResult(app, cmd.JSON, res, err, func() { writeStatus(app.Stdout, res, o.Script) }); err != nil {
		return err
	}
	if !res.OK() {
		return &tasks.SilentError{Code: 1}
	}
	return nil
}
