package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"

	"golang.org/x/term"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/push"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
	"github.com/ocireg-tool/ocireg-tool/tasks/taglock"
)

// AuthFlags are the destination credential options of push.
type AuthFlags struct {
	AuthMode      string `name:"auth-mode" help:"Credential source: none, home, authfile, credsfile or env (CONTAINER_REGISTRY_TOKEN, or CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD, from the environment; default: CONTAINER_REGISTRY_AUTH_MODE)."`
	UseHomeAuth   bool   `name:"use-home-auth" help:"Use ~/.docker/config.json (opt-in)."`
	Authfile      string `name:"authfile" help:"Docker-style config.json with the registry's credentials."`
	Credsfile     string `name:"credsfile" help:"key=value credentials file (CONTAINER_REGISTRY_TOKEN, or _USER and _PASSWORD)."`
	Creds         string `name:"creds" help:"USER:PASSWORD; it stays in shell history and other local users see it in ps while the command runs: prefer USER with --password-stdin."`
	Token         string `name:"token" help:"Registry token; it stays in shell history and other local users see it in ps while the command runs: prefer --token-stdin."`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password of the --creds USER from standard input (one line)."`
	TokenStdin    bool   `name:"token-stdin" help:"Read the registry token from standard input (one line)."`
}

func (f AuthFlags) flags(app *App) regauth.Flags {
	return regauth.Flags{AuthMode: f.AuthMode, UseHomeAuth: f.UseHomeAuth, Authfile: f.Authfile, Credsfile: f.Credsfile, Creds: f.Creds, Token: f.Token,
		PasswordStdin: f.PasswordStdin, TokenStdin: f.TokenStdin, Stdin: app.Stdin}
}

// PushCmd pushes deploy images to the registry.
type PushCmd struct {
	Target   string   `arg:"" optional:"" help:"Image name, or path to an OCI layout directory (default: every image of every machine)."`
	Tag      []string `short:"t" name:"tag" help:"Explicit tag (repeatable; needs an image name)."`
	Strategy string   `short:"s" name:"strategy" help:"Tag strategies, e.g. \"sha branch latest\" (default: CONTAINER_REGISTRY_TAG_STRATEGY)."`
	Version  string   `short:"v" name:"version" help:"Version for the semver and version strategies (default: IMAGE_VERSION)."`
	Prune    *bool    `name:"prune" negatable:"" help:"After a successful push, prune the pushed images by the retention policy (CONTAINER_REGISTRY_RETENTION_*), as prune --yes does (--no-prune: not; default: CONTAINER_REGISTRY_RETENTION_ON_PUSH)."`
	AttachFlag
	AuthFlags
}

// AttachFlag is --attach/--no-attach of push and populate.
type AttachFlag struct {
	Attach *bool `name:"attach" negatable:"" help:"Attach the build's SPDX SBOM, CVE-check SPDX and package list to each image as OCI referrers (--no-attach: nothing; default: CONTAINER_REGISTRY_ATTACH)."`
}

// Run resolves configuration and credentials and pushes.
func (p *PushCmd) Run(app *App) error {
	tty := isTerminal(app.Stderr)
	return runPush(app, "", false, p.Prune, p.AuthFlags, app.Stderr, push.Options{
		Target: p.Target, Tags: p.Tag, Strategy: p.Strategy, Version: p.Version, Attach: p.Attach,
		Events: &pushRenderer{w: app.Stderr, tty: tty}, Progress: tty,
	})
}

// runPush loads the configuration (from dump, if set), resolves the
// destination credentials and pushes with o; filter restricts the push to
// CONTAINER_REGISTRY_IMAGES (populate). After a successful push it prunes
// the pushed images when prune says so (nil: when
// CONTAINER_REGISTRY_RETENTION_ON_PUSH does).
func runPush(app *App, dump string, filter bool, prune *bool, f AuthFlags, out io.Writer, o push.Options) error {
	c, err := app.Config(dump, nil)
	if err != nil {
		return err
	}
	auth, err := resolveAuth(app, c.AuthMode, c.Authfile, c.Credsfile, f.flags(app), c.URL)
	if err != nil {
		return err
	}
	t, err := registry.New(c, app.ScriptName(c), auth)
	if err != nil {
		return err
	}
	if filter {
		o.Images = c.Images
	}
	if c.Sign {
		if o.Signer, err = newSigner(app, t); err != nil {
			return err
		}
	}
	sum, err := push.Push(app.Ctx, t, o)
	renderPushSummary(out, sum)
	if err != nil || sum == nil || !sum.Pushed {
		return err
	}
	switch {
	case prune != nil && *prune:
		return pruneAfterPush(app, c, sum.Repos, true, out)
	case prune == nil && c.Retention.OnPush:
		return pruneAfterPush(app, c, sum.Repos, false, out)
	}
	return nil
}

// pruneAfterPush prunes repos, the repositories a push wrote to, by the
// retention policy, without asking. Only the registry served from this
// configuration's storage (on this host, or its shared backend) can be
// pruned: for another one it says so, and fails when explicit (--prune).
func pruneAfterPush(app *App, c *config.Config, repos []string, explicit bool, out io.Writer) error {
	o, err := serverOptionsFor(app, c, false)
	if err != nil {
		return err
	}
	if !taglock.ServedLocally(c) && !c.Backend.S3() {
		msg := fmt.Sprintf("cannot prune after the push: %s is not the registry served from %s on this host (prune works on the registry's own storage)", c.URL, c.Storage)
		if explicit {
			return errors.New(msg)
		}
		fmt.Fprintf(out, "Note: %s; CONTAINER_REGISTRY_RETENTION_ON_PUSH ignored\n", msg)
		return nil
	}
	fmt.Fprintf(out, "\nPruning the pushed images (%s)...\n", strings.Join(repos, ", "))
	o.Events = &serverText{w: out, script: o.Script, prune: true}
	logrus.SetOutput(io.Discard) // distribution's sweep logs through it (see gc)
	res, err := server.Prune(app.Ctx, c, server.PruneOptions{Options: o, Policy: retention.FromConfig(c), Repos: repos, Yes: true})
	writePrune(out, res, o.Script, "")
	return err
}

// newSigner is the signer of push and import --sign: the configured key
// (made first when it is the generated one and missing).
func newSigner(app *App, t *registry.Target) (*sign.Signer, error) {
	k, err := sign.LoadKey(t.Config)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return sign.NewSigner(app.Ctx, t, k)
}

// resolveAuth turns auth flags and configuration into credentials and
// prints their warnings.
func resolveAuth(app *App, mode, authfile, credsfile string, f regauth.Flags, registry string) (*regauth.Resolved, error) {
	if (f.PasswordStdin || f.TokenStdin) && isTerminal(f.Stdin) {
		// Typed at a terminal, the secret would echo; and nothing prompts.
		return nil, errors.New("standard input is a terminal: pipe the secret in (e.g. ... < FILE) for the -stdin options")
	}
	o, err := regauth.DestinationOptions(mode, authfile, credsfile, f, app.Getenv)
	if err != nil {
		return nil, err
	}
	r, err := regauth.Resolve(o, registry)
	if err != nil {
		return nil, err
	}
	for _, w := range r.Warnings {
		app.warn(w)
	}
	return r, nil
}

func (a *App) warn(msg string) {
	a.Stderr.Write([]byte("Warning: " + msg + "\n"))
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
