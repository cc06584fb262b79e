package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// StopCmd stops the registry.
type StopCmd struct{}

// Run stops the registry; stopping a stopped registry is not an error.
func (StopCmd) Run(app *App) error {
	o, c, err := serverOptions(app)
	if err != nil {
		return err
	}
	_, err = server.Stop(c, o)
	return err
}
