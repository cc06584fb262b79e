package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/push"
)

// PopulateCmd is the bitbake-driven push: everything comes from the env
// dump (CONTAINER_REGISTRY_IMAGES, the strategy, PV, TARGET_ARCH).
type PopulateCmd struct {
	EnvDump string `name:"env-dump" required:"" type:"existingfile" env:"CONTAINER_REGISTRY_ENV_DUMP" help:"Bitbake env dump."`
	AttachFlag
	AuthFlags
}

// Run pushes with plain output; any failure gives a non-zero exit.
func (p *PopulateCmd) Run(app *App) error {
	return runPush(app, p.EnvDump, true, nil, p.AuthFlags, app.Stdout, push.Options{Events: &pushRenderer{w: app.Stdout}, Attach: p.Attach})
}
