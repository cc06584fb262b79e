package main

import (
	"fmt"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// TargetCmd installs the files of one target package.
type TargetCmd struct {
	Kind       string `arg:"" enum:"docker,oci,ca,policy" help:"Payload: docker (daemon.json), oci (registries.conf.d; with signing on also the public key, registries.d and policy.json), ca (CA certificate) or policy (signing on: the registry's signature requirement merged into DEST's policy.json)."`
	EnvDump    string `name:"env-dump" type:"existingfile" env:"CONTAINER_REGISTRY_ENV_DUMP" help:"Bitbake env dump."`
	Dest       string `name:"dest" required:"" help:"Install root, e.g. the recipe D directory."`
	SkipCA     bool   `name:"skip-ca" help:"Leave the CA certificate out of the docker/oci payload (container-registry-ca ships it)."`
	SkipPolicy bool   `name:"skip-policy" help:"Leave policy.json out of the oci payload (container-host-config ships it; the layer merges into it with the policy payload)."`
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
	if t.SkipPolicy {
		opts = append(opts, generator.SkipPolicy())
	}
	files, err := generator.InstallTarget(c, t.Kind, t.Dest, opts...)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(app.Stdout, "installed %s\n", f)
	}
	if t.Kind == generator.TargetDocker && c.Sign {
		fmt.Fprintln(app.Stdout, "Note: Docker does not verify sigstore signatures: this target pulls the registry's images signed or not (the oci payload's policy makes Podman, Skopeo and CRI-O require them)")
	}
	return nil
}
