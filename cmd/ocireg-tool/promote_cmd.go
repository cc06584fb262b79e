package main

import (
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/transfer"
)

// SelectFlags choose the tags of promote and export.
type SelectFlags struct {
	Images     []string `arg:"" optional:"" name:"image" help:"image[:tag] (tag latest when absent, unless --all-tags or --tag-pattern; the namespace is added when the name has no '/')."`
	AllTags    bool     `name:"all-tags" help:"Take every tag of each image."`
	TagPattern string   `name:"tag-pattern" placeholder:"GLOB" help:"Take the tags of each image matching a shell pattern, e.g. 'v1.*'."`
}

func (f SelectFlags) selection() transfer.Selection {
	return transfer.Selection{Images: f.Images, AllTags: f.AllTags, TagPattern: f.TagPattern}
}

// PromoteCmd copies images with their referrers to another registry.
type PromoteCmd struct {
	SelectFlags
	To           string   `name:"to" required:"" placeholder:"REGISTRY[/NAMESPACE]" help:"Destination registry, host[:port], and namespace (default: the local repository path)."`
	Tag          []string `short:"t" name:"tag" help:"Destination tag of the one tag selected (repeatable; default: the same tag)."`
	CAFile       string   `name:"ca-file" placeholder:"FILE" help:"PEM file of CA certificates the destination's TLS certificate is checked against (besides the system's)."`
	DestInsecure bool     `name:"dest-insecure" help:"Accept a plain-HTTP destination, or a TLS one without checking its certificate (a test registry, a lab mirror)."`
	JSON         bool     `name:"json" help:"Print the summary as JSON (no progress)."`
	EnvDump      string   `name:"env-dump" type:"existingfile" placeholder:"FILE" help:"Bitbake env dump to read the configuration from (do_promote_registry)."`
	AuthFlags
}

// Run connects to both registries and promotes.
func (p *PromoteCmd) Run(app *App) error {
	host, ns, err := transfer.ParseDestination(p.To)
	if err != nil {
		return err
	}
	c, err := app.Config(p.EnvDump, nil)
	if err != nil {
		return err
	}
	src, err := registry.New(c, app.ScriptName(c), nil)
	if err != nil {
		return err
	}
	creds, err := resolveAuth(app, c.AuthMode, c.Authfile, c.Credsfile, p.AuthFlags.flags(app), host)
	if err != nil {
		return err
	}
	dst, err := registry.ConnectRemote(app.Ctx, registry.RemoteOptions{Host: host, CAFile: p.CAFile, Insecure: p.DestInsecure, Creds: creds})
	if err != nil {
		return err
	}
	res, err := transfer.Promote(app.Ctx, src, dst, transfer.PromoteOptions{
		Selection: p.selection(), Namespace: ns, Rename: p.Tag, Events: progressSink(app, p.JSON),
	})
	if err != nil {
		return err
	}
	if p.JSON {
		return writeJSON(app.Stdout, res)
	}
	renderPromote(app.Stderr, res)
	return nil
}
