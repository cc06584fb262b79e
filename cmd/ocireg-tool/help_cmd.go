package main

import (
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/generator/config"
)

// HelpCmd prints the helper script's help.
type HelpCmd struct{}

// Run renders the help with the effective configuration; when the
// configuration is invalid it still prints the command list.
func (HelpCmd) Run(app *App) error {
	script := ""
	c, err := config.Load(config.Sources{Environ: app.Environ})
	if err != nil {
		// Without a usable configuration, still list the commands.
		c, _ = config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": "/"})
		script = "container-registry.sh"
	}
	if script == "" {
		script = app.ScriptName(c)
	}
	text, err := generator.Help(c, script)
	if err != nil {
		return err
	}
	_, err = app.Stdout.Write(text)
	return err
}
