package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/query"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// CatalogCmd prints the raw catalog.
type CatalogCmd struct {
	JSON bool `name:"json" help:"JSON output (the default for catalog; accepted for symmetry)."`
}

// Run prints /v2/_catalog, all pages merged.
func (cmd CatalogCmd) Run(app *App) error {
	t, err := app.Target(nil)
	if err != nil {
		return err
	}
	repos, err := query.Catalog(app.Ctx, t)
	if err != nil {
		return err
	}
	return writeJSON(app.Stdout, map[string][]string{"repositories": repos})
}

// ListCmd lists every image with its tags.
type ListCmd struct {
	JSON bool `name:"json" help:"JSON output for scripts."`
}

// Run lists the repositories and their tags.
func (cmd ListCmd) Run(app *App) error {
	t, err := app.Target(nil)
	if err != nil {
		return err
	}
	repos, err := query.List(app.Ctx, t)
	if err != nil {
		return err
	}
	if cmd.JSON {
		return writeJSON(app.Stdout, repos)
	}
	renderList(app.Stdout, t.Config.URL, repos)
	return nil
}

func renderList(w io.Writer, url string, repos []query.Repo) {
	fmt.Fprintf(w, "Images in %s:\n", url)
	if len(repos) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	for _, r := range repos {
		fmt.Fprintf(w, "  %s: %s\n", r.Name, orNone(strings.Join(r.Tags, " ")))
	}
}

// TagsCmd lists the tags of one image.
type TagsCmd struct {
	Image string `arg:"" optional:"" help:"Image name (the namespace is added when it has no '/')."`
	JSON  bool   `name:"json" help:"JSON output for scripts."`
}

// Run lists the tags of the image.
func (cmd TagsCmd) Run(app *App) error {
	t, err := app.Target(nil)
	if err != nil {
		return err
	}
	if cmd.Image == "" {
		s := t.Script
		return &tasks.UsageError{Msg: "Image name required", Usage: "Usage: " + s + " tags <image> [--json]\n\nExamples:\n  " + s + " tags container-base\n  " + s + " tags " + t.Config.Namespace + "/container-base --json"}
	}
	repo, err := query.Tags(app.Ctx, t, cmd.Image, cmd.JSON)
	if err != nil {
		return err
	}
	if cmd.JSON {
		return writeJSON(app.Stdout, repo)
	}
	renderTags(app.Stdout, repo)
	return nil
}

func renderTags(w io.Writer, repo *query.Repo) {
	fmt.Fprintf(w, "Tags for %s:\n", repo.Name)
	if len(repo.Tags) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	for _, t := range repo.Tags {
		fmt.Fprintf(w, "  %s\n", t)
	}
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
	d := query.Info(c)
	if cmd.JSON {
		return writeJSON(app.Stdout, d)
	}
	renderInfo(app.Stdout, d)
	return nil
}

// renderInfo prints the configuration. Every path and value that came from
// the configuration is a shell word (shellquote.Word): quoted when it holds
// spaces or shell metacharacters, escaped when it holds control characters.
func renderInfo(w io.Writer, d *query.InfoData) {
	or := func(s string) string {
		if s == "" {
			return "(not set)"
		}
		return s
	}
	word := func(s string) string {
		if s == "" {
			return "(not set)"
		}
		return shellquote.Word(s)
	}
	fmt.Fprintf(w, "Container registry configuration:\n")
	fmt.Fprintf(w, "  URL:          %s\n", word(d.URL))
	fmt.Fprintf(w, "  Namespace:    %s\n", word(d.Namespace))
	fmt.Fprintf(w, "  Storage:      %s\n", word(d.Storage))
	fmt.Fprintf(w, "  Config:       %s\n", word(d.Config))
	fmt.Fprintf(w, "  Deploy dirs:  %s\n", or(shellquote.Words(d.DeployDirs)))
	fmt.Fprintf(w, "  Tag strategy: %s\n", d.TagStrategy)
	fmt.Fprintf(w, "  Target arch:  %s\n", word(d.TargetArch))
	fmt.Fprintf(w, "  Mode:         %s\n", d.Mode)
	if d.Secure {
		fmt.Fprintf(w, "  PKI dir:      %s\n", word(d.PKIDir))
		fmt.Fprintf(w, "  CA cert:      %s\n", word(d.CACert))
	}
	if d.Auth {
		fmt.Fprintf(w, "  Username:     %s (the local registry's user)\n", word(d.Username))
		fmt.Fprintf(w, "  Password:     %s\n", word(d.PasswordFile))
	}
	fmt.Fprintf(w, "  Push auth:    %s\n", pushAuth(d.PushAuth))
	if d.Sign {
		fmt.Fprintf(w, "  Signing key:  %s\n", word(d.SigningKey))
		if d.SigningPubErr != "" {
			fmt.Fprintf(w, "  Public key:   %s (%s; start creates it)\n", word(d.SigningPub), d.SigningPubErr)
		} else {
			fmt.Fprintf(w, "  Public key:   %s (%s)\n", word(d.SigningPub), d.SigningFingerprint)
		}
	}
	onPush := ""
	if d.RetentionOnPush {
		onPush = " (push prunes the images it pushed)"
	}
	fmt.Fprintf(w, "  Retention:    %s%s\n", d.Retention, onPush)
	switch {
	case d.LastPruneErr != "":
		fmt.Fprintf(w, "  Last prune:   unreadable record (%s)\n", d.LastPruneErr)
	case d.LastPrune == nil:
		fmt.Fprintf(w, "  Last prune:   none recorded\n")
	default:
		fmt.Fprintf(w, "  Last prune:   %s\n", pruneRecordText(d.LastPrune))
	}
	fmt.Fprintf(w, "\nWhere each value comes from:\n")
	width := 32
	for _, s := range d.Sources {
		width = max(width, len(s.Name))
	}
	for _, s := range d.Sources {
		fmt.Fprintf(w, "  %-*s %-28s (%s)\n", width, s.Name, word(s.Value), s.From)
	}
}

// pushAuth says where push and import take the destination's credentials
// from: in env mode the variables, which are not the local registry's.
func pushAuth(mode string) string {
	if mode == "env" {
		return "env (CONTAINER_REGISTRY_TOKEN, or CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD)"
	}
	return mode
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// pruneRecordText says in one line what the last prune did.
func pruneRecordText(r *runstate.PruneRecord) string {
	at := r.At.UTC().Format("2006-01-02 15:04 UTC")
	switch {
	case r.Error != "":
		return fmt.Sprintf("%s: failed: %s", at, r.Error)
	case r.Removed:
		return fmt.Sprintf("%s: removed %d tag(s) of %d image(s), freed %s", at, r.Tags, r.Images, tasks.HumanBytes(r.Bytes))
	case r.Tags == 0:
		return fmt.Sprintf("%s: nothing to prune", at)
	}
	return fmt.Sprintf("%s: dry run only: %d tag(s) can go, %s", at, r.Tags, tasks.HumanBytes(r.Bytes))
}
