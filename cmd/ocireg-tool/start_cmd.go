package main

import (
	"fmt"
	"os"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// StartCmd starts the registry in the background.
type StartCmd struct {
	JSON bool `name:"json" help:"Print the result as JSON (no progress lines)."`
}

// Run starts the registry and waits until it answers.
func (cmd StartCmd) Run(app *App) error {
	o, c, err := serverOptions(app, cmd.JSON)
	if err != nil {
		return err
	}
	res, err := server.Start(app.Ctx, c, o)
	return renderResult(app, cmd.JSON, res, err, func() { writeStart(app.Stdout, res, o.Script) })
}

// RestartCmd stops the registry (wherever this storage runs it) and starts
// it with the configuration of now.
type RestartCmd struct {
	JSON bool `name:"json" help:"Print the result as JSON (no progress lines)."`
}

// Run restarts the registry.
func (cmd RestartCmd) Run(app *App) error {
	o, c, err := serverOptions(app, cmd.JSON)
	if err != nil {
		return err
	}
	res, err := server.Restart(app.Ctx, c, o)
	return renderResult(app, cmd.JSON, res, err, func() { writeRestart(app.Stdout, res, o.Script) })
}

// serverOptions loads the configuration and the options shared by the
// commands that manage the server process. Their events are written as
// text to stdout, or dropped for --json.
func serverOptions(app *App, jsonOut bool) (server.Options, *config.Config, error) {
	c, err := app.Config("", nil)
	if err != nil {
		return server.Options{}, nil, err
	}
	o, err := serverOptionsFor(app, c, jsonOut)
	return o, c, err
}

// serverOptionsFor is serverOptions for the configuration c (loaded with
// a command's flags).
func serverOptionsFor(app *App, c *config.Config, jsonOut bool) (server.Options, error) {
	self, err := os.Executable()
	if err != nil {
		return server.Options{}, fmt.Errorf("locating the running tool: %w", err)
	}
	o := server.Options{Self: self, Script: app.ScriptName(c), Environ: app.Environ}
	if !jsonOut {
		o.Events = &serverText{w: app.Stdout, script: o.Script}
	}
	return o, nil
}

// renderResult finishes a server command: with --json the result as JSON
// (only when the task succeeded), else text (also the part of a result
// that a failed task returns). The task's error, if any, is returned
// after the text.
func renderResult[R any](app *App, jsonOut bool, res *R, err error, text func()) error {
	switch {
	case res == nil:
		return err
	case jsonOut && err == nil:
		return writeJSON(app.Stdout, res)
	case !jsonOut:
		text()
	}
	return err
}
