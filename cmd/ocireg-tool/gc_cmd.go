package main

import (
	"os"

	"golang.org/x/term"

	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// GCCmd garbage-collects the registry storage.
type GCCmd struct {
	Yes            bool `name:"yes" short:"y" help:"Remove without asking (unattended use)."`
	DeleteUntagged bool `name:"delete-untagged" help:"Also remove manifests that no tag references."`
}

// Run shows the dry run, asks (on a terminal) and collects.
func (cmd GCCmd) Run(app *App) error {
	o, c, err := serverOptions(app)
	if err != nil {
		return err
	}
	interactive := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	_, err = server.GC(app.Ctx, c, server.GCOptions{
		Options:        o,
		Yes:            cmd.Yes,
		DeleteUntagged: cmd.DeleteUntagged,
		Interactive:    interactive,
		In:             os.Stdin,
	})
	return err
}
