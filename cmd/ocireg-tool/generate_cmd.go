package main

import (
	"fmt"
	"os"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
)

// GenerateCmd writes the helper script and everything it needs.
type GenerateCmd struct {
	EnvDump string `name:"env-dump" type:"existingfile" env:"CONTAINER_REGISTRY_ENV_DUMP" help:"Bitbake env dump (the class's dump or 'bitbake -e' output)."`
	Storage string `name:"storage" env:"CONTAINER_REGISTRY_STORAGE" help:"Storage directory (default: TOPDIR/container-registry)."`
}

// Run generates the artifacts and says where they are.
func (g *GenerateCmd) Run(app *App) error {
	flags := config.Vars{}
	if g.Storage != "" {
		flags["CONTAINER_REGISTRY_STORAGE"] = g.Storage
	}
	c, err := app.Config(g.EnvDump, flags)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating the running tool: %w", err)
	}
	res, err := generator.Generate(c, self, time.Now())
	if err != nil {
		return err
	}
	for _, w := range res.Warnings[len(c.Warnings):] {
		fmt.Fprintf(app.Stderr, "Warning: %s\n", w)
	}
	out := app.Stdout
	script := shellquote.Word(res.Script)
	fmt.Fprintf(out, "Generated container registry helper (%s)\n", c.Mode())
	fmt.Fprintf(out, "  Script:  %s\n", script)
	fmt.Fprintf(out, "  Config:  %s\n", shellquote.Word(res.Config))
	fmt.Fprintf(out, "  Storage: %s\n", shellquote.Word(c.Storage))
	if c.Secure {
		fmt.Fprintf(out, "  PKI:     %s", shellquote.Word(c.PKIDir()))
		switch {
		case res.Secrets.PKI.CreatedCA:
			fmt.Fprintf(out, " (new CA and server certificate)\n")
		case res.Secrets.PKI.CreatedServer:
			fmt.Fprintf(out, " (new server certificate from the existing CA)\n")
		default:
			fmt.Fprintf(out, " (existing, kept)\n")
		}
		fmt.Fprintf(out, "  CA cert: %s\n", shellquote.Word(c.CACert()))
	}
	if k := res.Secrets.Signing; k != nil {
		writeSigningKey(out, k)
	}
	if len(res.Changed) == 0 {
		fmt.Fprintf(out, "  (everything was already up to date)\n")
	}
	fmt.Fprintf(out, "\nNext:\n  %s start\n  %s push\n  %s help\n", script, script, script)
	return nil
}
