package main

import "github.com/ocireg-tool/ocireg-tool/tasks/serve"

// ServeCmd runs the registry in the foreground.
type ServeCmd struct{}

// Run serves until SIGTERM or SIGINT.
func (ServeCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	return serve.Serve(app.Ctx, c, app.Stderr)
}
