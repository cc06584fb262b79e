package main

import (
	"encoding/json"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/verify"
)

// VerifyCmd checks the registry storage like `git fsck`.
type VerifyCmd struct {
	JSON bool `name:"json" help:"Print the report as JSON."`
}

// Run verifies and exits 1 when any problem was found.
func (cmd VerifyCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	rep, err := verify.Verify(app.Ctx, c)
	if err != nil {
		return err
	}
	if cmd.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		verify.Print(app.Stdout, c.DataDir(), rep)
	}
	if !rep.OK() {
		return &tasks.SilentError{Code: 1}
	}
	return nil
}
