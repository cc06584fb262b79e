package main

import (
	"fmt"
	"os"

	"github.com/ocireg-tool/ocireg-tool/generator/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// StartCmd starts the registry in the background.
type StartCmd struct{}

// Run starts the registry and waits until it answers.
func (StartCmd) Run(app *App) error {
	o, c, err := serverOptions(app)
	if err != nil {
		return err
	}
	_, err = server.Start(app.Ctx, c, o)
	return err
}

// RestartCmd stops the registry (wherever this storage runs it) and starts
// it with the configuration of now.
type RestartCmd struct{}

// Run restarts the registry.
func (RestartCmd) Run(app *App) error {
	o, c, err := serverOptions(app)
	if err != nil {
		return err
	}
	_, err = server.Restart(app.Ctx, c, o)
	return err
}

// serverOptions loads the configuration and the options shared by the
// commands that manage the server process.
func serverOptions(app *App) (server.Options, *config.Config, error) {
	c, err := app.Config("", nil)
	if err != nil {
		return server.Options{}, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return server.Options{}, nil, fmt.Errorf("locating the running tool: %w", err)
	}
	return server.Options{Self: self, Script: app.ScriptName(c), Environ: app.Environ, Out: app.Stdout}, c, nil
}
