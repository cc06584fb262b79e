package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/importer"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
)

// ImportCmd copies a third-party image into the registry.
type ImportCmd struct {
	Source       string   `arg:"" optional:"" help:"docker://REF or REF, oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE."`
	Name         string   `arg:"" optional:"" help:"Image name in the registry (default: the source's last path element)."`
	Tag          string   `short:"t" name:"tag" help:"Tag to create (default: the source tag, else latest)."`
	Platform     []string `name:"platform" help:"Copy only this platform, e.g. linux/arm64 (repeatable; default: all)."`
	SrcAuthfile  string   `name:"src-authfile" help:"Docker config.json for the source registry."`
	SrcCredsfile string   `name:"src-credsfile" help:"key=value credentials file for the source registry."`
	SrcCreds     string   `name:"src-creds" help:"USER:PASSWORD for the source registry (kept in shell history)."`
	SrcToken     string   `name:"src-token" help:"Token for the source registry (kept in shell history)."`
}

// Run resolves source and destination credentials and imports.
func (i *ImportCmd) Run(app *App) error {
	c, err := app.Config("", nil)
	if err != nil {
		return err
	}
	src, err := resolveAuth(app, "none", "", "", regauth.Flags{
		Authfile: i.SrcAuthfile, Credsfile: i.SrcCredsfile, Creds: i.SrcCreds, Token: i.SrcToken,
		CredsFlag: "--src-creds", TokenFlag: "--src-token",
	}, importer.SourceRegistry(i.Source))
	if err != nil {
		return err
	}
	dest, err := resolveAuth(app, c.AuthMode, c.Authfile, c.Credsfile, regauth.Flags{}, c.URL)
	if err != nil {
		return err
	}
	return importer.Import(app.Ctx, importer.Options{
		Config: c, Source: i.Source, Name: i.Name, Tag: i.Tag, Platforms: i.Platform,
		SrcAuth: src, DestAuth: dest, Out: app.Stderr, Script: app.ScriptName(c),
	})
}
