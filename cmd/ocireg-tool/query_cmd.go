package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks"
)

// CatalogCmd prints the raw catalog.
type CatalogCmd struct {
	JSON bool `name:"json" help:"JSON output (the default for catalog; accepted for symmetry)."`
}

// Run prints /v2/_catalog, all pages merged.
func (cmd CatalogCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	return tasks.Catalog(app.Ctx, c, tasks.QueryOptions{Out: app.Stdout, JSON: true, Script: app.ScriptName(c)})
}

// ListCmd lists every image with its tags.
type ListCmd struct {
	JSON bool `name:"json" help:"JSON output for scripts."`
}

// Run lists the repositories and their tags.
func (cmd ListCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	return tasks.List(app.Ctx, c, tasks.QueryOptions{Out: app.Stdout, JSON: cmd.JSON, Script: app.ScriptName(c)})
}

// TagsCmd lists the tags of one image.
type TagsCmd struct {
	Image string `arg:"" optional:"" help:"Image name (the namespace is added when it has no '/')."`
	JSON  bool   `name:"json" help:"JSON output for scripts."`
}

// Run lists the tags of the image.
func (cmd TagsCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	script := app.ScriptName(c)
	if cmd.Image == "" {
		return &tasks.UsageError{Msg: "Image name required", Usage: "Usage: " + script + " tags <image> [--json]\n\nExamples:\n  " + script + " tags container-base\n  " + script + " tags " + c.Namespace + "/container-base --json"}
	}
	return tasks.Tags(app.Ctx, c, cmd.Image, tasks.QueryOptions{Out: app.Stdout, JSON: cmd.JSON, Script: script})
}

// InfoCmd shows the configuration.
type InfoCmd struct {
	JSON bool `name:"json" help:"JSON output for scripts."`
}

// Run prints the effective configuration.
func (cmd InfoCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	return tasks.Info(c, tasks.QueryOptions{Out: app.Stdout, JSON: cmd.JSON, Script: app.ScriptName(c)})
}
