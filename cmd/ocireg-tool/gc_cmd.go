package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/ocireg-tool/ocireg-tool/tasks/server"
	"github.com/sirupsen/logrus"
)

// GCCmd garbage-collects the registry storage.
type GCCmd struct {
	Yes            bool `name:"yes" short:"y" help:"Remove without asking (unattended use)."`
	DeleteUntagged bool `name:"delete-untagged" help:"Also remove manifests that no tag references."`
	JSON           bool `name:"json" help:"Print the result as JSON (never asks; without --yes a dry run)."`
}

// Run shows the dry run, asks (on a terminal) and collects.
func (cmd GCCmd) Run(app *App) error {
	o, c, err := serverOptions(app, cmd.JSON)
	if err != nil {
		return err
	}
	g := server.GCOptions{Options: o, Yes: cmd.Yes, DeleteUntagged: cmd.DeleteUntagged}
	if !cmd.JSON && term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())) {
		g.Confirm = func() bool { return askYes(app, gcQuestion, bufio.NewReader(os.Stdin)) }
	}
	// distribution logs every deletion through logrus's standard logger,
	// which only the process may configure; the result says it better.
	logrus.SetOutput(io.Discard)
	res, err := server.GC(app.Ctx, c, g)
	return renderResult(app, cmd.JSON, res, err, func() { writeGC(app.Stdout, res, o.Script) })
}

// askYes writes question and reports whether the answer read from in is
// yes.
func askYes(app *App, question string, in *bufio.Reader) bool {
	fmt.Fprint(app.Stdout, question)
	answer, _ := in.ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return true
	}
	return false
}
