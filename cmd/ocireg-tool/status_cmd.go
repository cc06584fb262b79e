package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// StatusCmd tells whether the registry runs and answers.
type StatusCmd struct{}

// Run exits 0 only when the registry runs and /v2/ answers.
func (StatusCmd) Run(app *App) error {
	o, c, err := serverOptions(app)
	if err != nil {
		return err
	}
	return server.Status(app.Ctx, c, o)
}
