package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/importer"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/transfer"
)

// ImportCmd copies a third-party image into the registry.
type ImportCmd struct {
	Source       string   `arg:"" optional:"" help:"docker://REF or REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE. A bundle written by export (oci-archive:FILE, no name): every image, tag and referrer it holds."`
	Name         string   `arg:"" optional:"" help:"Image name in the registry (default: the source's last path element)."`
	Tag          string   `short:"t" name:"tag" help:"Tag to create (default: the source tag, else latest)."`
	Platform     []string `name:"platform" help:"Copy only this platform, e.g. linux/arm64 (repeatable; default: all)."`
	SrcAuthfile  string   `name:"src-authfile" help:"Docker config.json for the source registry."`
	SrcCredsfile string   `name:"src-credsfile" help:"key=value credentials file for the source registry."`
	SrcCreds     string   `name:"src-creds" help:"USER:PASSWORD for the source registry; it stays in shell history and other local users see it in ps while the command runs: prefer USER with --src-password-stdin."`
	SrcToken     string   `name:"src-token" help:"Token for the source registry; it stays in shell history and other local users see it in ps while the command runs: prefer --src-token-stdin."`
	SrcPwStdin   bool     `name:"src-password-stdin" help:"Read the password of the --src-creds USER from standard input (one line)."`
	SrcTokStdin  bool     `name:"src-token-stdin" help:"Read the source registry's token from standard input (one line)."`
	Sign         bool     `name:"sign" help:"Sign the imported image (every platform manifest and the index) with the signing key (CONTAINER_REGISTRY_SIGNING_KEY, else the generated one); without it imported images stay unsigned."`
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
		PasswordStdin: i.SrcPwStdin, TokenStdin: i.SrcTokStdin, Stdin: app.Stdin,
		PasswordStdinFlag: "--src-password-stdin", TokenStdinFlag: "--src-token-stdin",
	}, importer.SourceRegistry(i.Source))
	if err != nil {
		return err
	}
	dest, err := resolveAuth(app, c.AuthMode, c.Authfile, c.Credsfile, regauth.Flags{}, c.URL)
	if err != nil {
		return err
	}
	t, err := registry.New(c, app.ScriptName(c), dest)
	if err != nil {
		return err
	}
	if file, ok := bundleSource(app, i.Source); ok {
		if i.Sign {
			return &tasks.UsageError{Msg: fmt.Sprintf("%s is a bundle: it carries the signatures its images had; --sign signs one image imported by name (oci-archive:%s:<name>:<tag>)", file, file), Usage: importer.Usage}
		}
		if i.Name != "" || i.Tag != "" || len(i.Platform) > 0 {
			return &tasks.UsageError{Msg: fmt.Sprintf("%s is a bundle: it restores its own images and tags (pick one with oci-archive:%s:<name>:<tag> to rename it)", file, file), Usage: importer.Usage}
		}
		res, err := transfer.ImportBundle(app.Ctx, t, file, progressSink(app, false))
		if err != nil {
			return err
		}
		renderImportBundle(app.Stderr, c.URL, res)
		return nil
	}
	o := importer.Options{Source: i.Source, Name: i.Name, Tag: i.Tag, Platforms: i.Platform, SrcAuth: src}
	if i.Sign {
		if o.Signer, err = newSigner(app, t); err != nil {
			return err
		}
	}
	res, err := importer.Import(app.Ctx, t, o)
	if err != nil {
		return err
	}
	renderImport(app.Stderr, c, res)
	return nil
}

// bundleSource returns the file of an oci-archive:FILE source that is a
// bundle written by export (no :<ref> given).
func bundleSource(app *App, source string) (string, bool) {
	file, ok := strings.CutPrefix(source, "oci-archive:")
	if !ok {
		return "", false
	}
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return file, transfer.IsBundle(app.Ctx, file)
}

func renderImport(w io.Writer, c *config.Config, r *importer.Result) {
	fmt.Fprintf(w, "Importing: %s -> %s/%s:%s\n", r.Source, c.URL, r.Repo, r.Tag)
	fmt.Fprintf(w, "  platforms: %s\n", r.Platforms)
	if r.Digest != "" {
		fmt.Fprintf(w, "  digest:    %s\n", r.Digest)
	}
	for _, s := range r.Signed {
		note := "signed"
		if s.Already {
			note = "already signed"
		}
		fmt.Fprintf(w, "  %s: %s (%s)\n", note, s.Digest, s.Tag)
	}
	if r.SigningKey != "" {
		fmt.Fprintf(w, "  key:       %s\n", r.SigningKey)
	}
	pull := r.Name
	if r.Tag != "latest" {
		pull += ":" + r.Tag
	}
	fmt.Fprintf(w, "Imported %s/%s:%s\n\nPull it on a target with vdkr:\n", c.URL, r.Repo, r.Tag)
	fmt.Fprintf(w, "  vdkr --registry %s/%s pull %s\n", c.TargetURL, c.Namespace, pull)
	fmt.Fprintf(w, "  (or once: vdkr vconfig registry %s/%s; then: vdkr pull %s)\n", c.TargetURL, c.Namespace, pull)
}
