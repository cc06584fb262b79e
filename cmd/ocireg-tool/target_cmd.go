package main

import (
	"fmt"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// TargetCmd installs the files of one target package.
type TargetCmd struct {
	Kind    string `arg:"" enum:"docker,oci,ca" help:"Payload: docker (daemon.json), oci (registries.conf.d) or ca (CA certificate)."`
	EnvDump string `name:"env-dump" type:"existingfile" env:"CONTAINER_REGISTRY_ENV_DUMP" help:"Bitbake env dump."`
	Dest    string `name:"dest" required:"" help:"Install root, e.g. the recipe D directory."`
	SkipCA  bool   `name:"skip-ca" help:"Leave the CA certificate out of the docker/oci payload (container-registry-ca ships it)."`
}

// Run writes the payload under Dest.
func (t *TargetCmd) Run(app *App) error {
	c, err := app.Config(t.EnvDump, nil)
	if err != nil {
		return err
	}
	var opts []generator.TargetOption
	if t.SkipCA {
		opts = append(opts, generator.SkipCA())
	}
	files, err := generator.InstallTarget(c, t.Kind, t.Dest, opts...)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(app.Stdout, "installed %s\n", f)
	}
	return nil
}
