package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks"
)

// DeleteCmd deletes one tag.
type DeleteCmd struct {
	Ref string `arg:"" optional:"" name:"image:tag" help:"The tag to delete, as <image>:<tag>."`
}

// Run deletes exactly the given tag.
func (cmd DeleteCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	return tasks.Delete(app.Ctx, c, cmd.Ref, tasks.DeleteOptions{Out: app.Stdout, Script: app.ScriptName(c)})
}
