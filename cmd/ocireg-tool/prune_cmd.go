package main

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// PruneCmd removes the builds the retention policy does not keep.
type PruneCmd struct {
	Images   []string `arg:"" optional:"" name:"image" help:"Images to prune (default: every image)."`
	Keep     *int     `name:"keep" placeholder:"N" help:"Keep the newest N builds of every image (default: CONTAINER_REGISTRY_RETENTION_KEEP; 0: no count limit)."`
	KeepDays *int     `name:"keep-days" placeholder:"D" help:"Keep the builds younger than D days (default: CONTAINER_REGISTRY_RETENTION_DAYS; 0: no age limit)."`
	Protect  []string `name:"protect" sep:"none" placeholder:"PATTERN" help:"Tag pattern never pruned, with its build (repeatable; replaces CONTAINER_REGISTRY_RETENTION_PROTECT)."`
	Yes      bool     `name:"yes" short:"y" help:"Remove without asking (unattended use)."`
	JSON     bool     `name:"json" help:"Print the result as JSON (never asks; without --yes a dry run)."`
}

// flags are the settings the command line sets.
func (cmd PruneCmd) flags() config.Vars {
	v := config.Vars{}
	if cmd.Keep != nil {
		v["CONTAINER_REGISTRY_RETENTION_KEEP"] = strconv.Itoa(*cmd.Keep)
	}
	if cmd.KeepDays != nil {
		v["CONTAINER_REGISTRY_RETENTION_DAYS"] = strconv.Itoa(*cmd.KeepDays)
	}
	if cmd.Protect != nil {
		v["CONTAINER_REGISTRY_RETENTION_PROTECT"] = strings.Join(cmd.Protect, " ")
	}
	return v
}

// args spells the command's options again, for the line that runs the
// removal after a dry run.
func (cmd PruneCmd) args() string {
	var a []string
	for _, im := range cmd.Images {
		a = append(a, shellquote.Word(im))
	}
	if cmd.Keep != nil {
		a = append(a, "--keep", strconv.Itoa(*cmd.Keep))
	}
	if cmd.KeepDays != nil {
		a = append(a, "--keep-days", strconv.Itoa(*cmd.KeepDays))
	}
	for _, p := range cmd.Protect {
		a = append(a, "--protect", shellquote.Word(p))
	}
	return strings.Join(a, " ")
}

// Run shows the plan and the dry run, asks (on a terminal) and prunes.
func (cmd PruneCmd) Run(app *App) error {
	for _, p := range cmd.Protect {
		if err := config.CheckTagPattern(p); err != nil {
			return &tasks.UsageError{Msg: "--protect: " + err.Error()}
		}
	}
	c, err := app.Config("", cmd.flags())
	if err != nil {
		return err
	}
	repos, err := pruneRepos(c, cmd.Images)
	if err != nil {
		return err
	}
	o, err := serverOptionsFor(app, c, cmd.JSON)
	if err != nil {
		return err
	}
	if t, ok := o.Events.(*serverText); ok {
		t.prune = true
	}
	p := server.PruneOptions{Options: o, Policy: retention.FromConfig(c), Repos: repos, Yes: cmd.Yes}
	if !cmd.JSON && term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())) {
		p.Confirm = func() bool { return askYes(app, pruneQuestion, bufio.NewReader(os.Stdin)) }
	}
	logrus.SetOutput(io.Discard) // distribution's sweep logs through it (see gc)
	res, err := server.Prune(app.Ctx, c, p)
	return renderResult(app, cmd.JSON, res, err, func() { writePrune(app.Stdout, res, o.Script, cmd.args()) })
}

// pruneRepos turns image names into repository names (the namespace is
// added to a name without '/'), checked by the repository grammar.
func pruneRepos(c *config.Config, images []string) ([]string, error) {
	var repos []string
	for _, im := range images {
		repo := registry.RepoName(c, im)
		if err := imageref.ValidateRepository(repo); err != nil {
			return nil, &tasks.UsageError{Msg: "invalid image name " + strconv.Quote(im) + ": " + err.Error()}
		}
		repos = append(repos, repo)
	}
	return repos, nil
}
