package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/transfer"
)

// ExportCmd writes images with their referrers to one OCI layout archive.
type ExportCmd struct {
	SelectFlags
	Output  string `short:"o" name:"output" required:"" placeholder:"FILE" help:"The bundle to write: an OCI image layout tar (oci-archive), replaced only once complete."`
	Since   string `name:"since" placeholder:"FILE" help:"An earlier bundle: leave out the blobs it holds (a differential bundle)."`
	JSON    bool   `name:"json" help:"Print the summary as JSON (no progress)."`
	EnvDump string `name:"env-dump" type:"existingfile" placeholder:"FILE" help:"Bitbake env dump to read the configuration from (do_export_registry)."`
}

// Run exports.
func (e *ExportCmd) Run(app *App) error {
	c, err := app.Config(e.EnvDump, nil)
	if err != nil {
		return err
	}
	t, err := registry.New(c, app.ScriptName(c), nil)
	if err != nil {
		return err
	}
	res, err := transfer.Export(app.Ctx, t, transfer.ExportOptions{
		Selection: e.selection(), Output: e.Output, Since: e.Since, Events: progressSink(app, e.JSON),
	})
	if err != nil {
		return err
	}
	if e.JSON {
		return writeJSON(app.Stdout, res)
	}
	renderExport(app.Stderr, res)
	return nil
}
