package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/push"
)

// PopulateCmd is the bitbake-driven push: everything comes from the env
// dump (CONTAINER_REGISTRY_IMAGES, the strategy, PV, TARGET_ARCH).
type PopulateCmd struct {
	EnvDump string `name:"env-dump" required:"" type:"existingfile" env:"CONTAINER_REGISTRY_ENV_DUMP" help:"Bitbake env dump."`
	AuthFlags
}

// Run pushes with plain output; any failure gives a non-zero exit.
func (p *PopulateCmd) Run(app *App) error {
	c, err := app.Config(p.EnvDump, nil)
	if err != nil {
		return err
	}
	auth, err := resolveAuth(app, c.AuthMode, c.Authfile, c.Credsfile, p.flags(), c.URL)
	if err != nil {
		return err
	}
	_, err = push.Push(app.Ctx, push.Options{
		Config: c, Images: c.Images, Auth: auth, Out: app.Stdout, Script: app.ScriptName(c),
	})
	return err
}
