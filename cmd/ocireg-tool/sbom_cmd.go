package main

import (
	"fmt"

	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks/query"
)

// SBOMCmd fetches a build document attached to an image.
type SBOMCmd struct {
	Image    string `arg:"" optional:"" help:"image[:tag] (tag latest when absent; the namespace is added when the name has no '/')."`
	Platform string `name:"platform" help:"os/arch[/variant] of the image (needed when the tag holds several)."`
	Kind     string `name:"kind" default:"sbom" enum:"sbom,cve,manifest" help:"Which document: sbom (SPDX), cve (sbom-cve-check SPDX) or manifest (package list)."`
	Output   string `short:"o" name:"output" placeholder:"FILE" help:"Write the document to FILE instead of standard output (- is standard output; a device, FIFO or link is written through, never replaced; an existing file keeps its mode)."`
}

// Run fetches the document and writes it.
func (cmd SBOMCmd) Run(app *App) error {
	t, err := app.Target(nil)
	if err != nil {
		return err
	}
	doc, err := query.SBOM(app.Ctx, t, query.SBOMOptions{Image: cmd.Image, Platform: cmd.Platform, Kind: cmd.Kind})
	if err != nil {
		return err
	}
	if cmd.Output == "" {
		_, err = app.Stdout.Write(doc.Data)
		return err
	}
	if err := safefile.WriteUserFile(app.Ctx, cmd.Output, doc.Data, app.Stdout); err != nil {
		return fmt.Errorf("--output %s: %w", cmd.Output, err)
	}
	if cmd.Output == "-" {
		return nil
	}
	via := "referrers tag"
	if doc.API {
		via = "referrers API"
	}
	fmt.Fprintf(app.Stderr, "Wrote %s (%d bytes): %s of %s:%s (%s, %s) from %s\n",
		shellquote.Word(cmd.Output), len(doc.Data), doc.ArtifactType, doc.Repo, doc.Tag, doc.Platform, shortDigest(doc.Subject.String()), via)
	return nil
}
