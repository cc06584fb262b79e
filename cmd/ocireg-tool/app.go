package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// App carries what every command needs: output streams, the environment
// and, when called through the generated helper, the script's path.
type App struct {
	Ctx context.Context
	// Stdin is where the -stdin options read a secret.
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string
	// Script is the helper script's path when the tool runs through it.
	// Human-readable messages then go to stdout, as those of meta-virtualization's container-registry.sh did.
	Script string
}

// Config loads the configuration: flags > environment > env dump > defaults.
func (a *App) Config(dump string, flags config.Vars) (*config.Config, error) {
	c, err := config.Load(config.Sources{Dump: dump, Environ: a.Environ, Flags: flags})
	if err != nil {
		return nil, err
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(a.Stderr, "Warning: %s\n", w)
	}
	for _, n := range c.Notes {
		fmt.Fprintf(a.Stderr, "Note: %s\n", n)
	}
	return c, nil
}

// Target loads the configuration and builds the one Target every registry
// command uses. creds are destination credentials (nil: the local
// registry's own).
func (a *App) Target(creds *regauth.Resolved) (*registry.Target, error) {
	c, err := a.Config("", nil)
	if err != nil {
		return nil, err
	}
	return registry.New(c, a.ScriptName(c), creds)
}

// Getenv returns the value of key in the tool's environment, "" when unset.
func (a *App) Getenv(key string) string {
	return config.FromEnviron(a.Environ)[key]
}

// ScriptName is how messages refer to the helper script: a shell word
// (see shellquote.Word), so that every hint that shows a command can be copied
// as it is, whatever the storage path holds.
func (a *App) ScriptName(c *config.Config) string {
	if a.Script != "" {
		return shellquote.Word(a.Script)
	}
	return shellquote.Word(c.Script())
}

// interrupted is the cause of the run's context ending at a signal.
type interrupted struct{ sig syscall.Signal }

func (e *interrupted) Error() string {
	if e.sig == syscall.SIGINT {
		return "interrupted by SIGINT"
	}
	return "interrupted by SIGTERM"
}

// exitCode is the shell's status for a process ended by the signal.
func (e *interrupted) exitCode() int { return 128 + int(e.sig) }

// signalContext returns a context that ends at the first SIGINT or SIGTERM
// (its cause an *interrupted), so that work stops and cleans up; a second
// signal exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		first := &interrupted{sig: (<-ch).(syscall.Signal)}
		cancel(first)
		second := &interrupted{sig: (<-ch).(syscall.Signal)}
		os.Exit(second.exitCode())
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

func run(args []string, environ []string) int {
	ctx, stop := signalContext()
	defer stop()
	app := &App{Ctx: ctx, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: environ}
	if v := app.Getenv("CONTAINER_REGISTRY_SCRIPT"); v != "" {
		app.Script = v
		app.Stderr = os.Stdout
	}
	return runApp(app, args)
}

func runApp(app *App, args []string) int {
	var cli CLI
	exit := -1
	parser, err := newParser(app, &cli, func(code int) { exit = code; panic(exitPanic{}) })
	if err != nil {
		fmt.Fprintf(app.Stderr, "Error: %v\n", err)
		return exitFailed
	}
	if len(args) == 0 && app.Script != "" {
		args = []string{"help"}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") && !isCommand(parser, args[0]) {
		fmt.Fprintf(app.Stderr, "Unknown command: %s\n\n", args[0])
		_ = writeHelp(app, parser.Model)
		return exitUsage
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitPanic); ok {
					code = exit
					return
				}
				panic(r)
			}
		}()
		kctx, err := parser.Parse(args)
		if err != nil {
			fmt.Fprintf(app.Stderr, "Error: %v\n", err)
			if kctx != nil {
				fmt.Fprintf(app.Stderr, "Run 'ocireg-tool %s --help' for usage.\n", kctx.Command())
			}
			return exitUsage
		}
		if err := kctx.Run(); err != nil {
			return reportError(app, err)
		}
		return exitOK
	}()
	return code
}

// newParser is the kong parser of cli, writing to app's streams and
// calling exit where kong would exit.
func newParser(app *App, cli *CLI, exit func(int)) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("ocireg-tool"),
		kong.Description("Local container registry tooling for Yocto/OpenEmbedded builds."),
		kong.UsageOnError(),
		kong.Writers(app.Stdout, app.Stderr),
		kong.Exit(exit),
		kong.Bind(app),
		kong.BindTo(app.Ctx, (*context.Context)(nil)),
		kong.Vars{"version": buildinfo.Version},
		kong.KindMapper(reflect.String, verbatimString),
	)
}

type exitPanic struct{}

// verbatimString decodes a string argument, flag or environment value as
// the bytes it is. Kong's own string decoder goes through JSON, which
// turns bytes that are not UTF-8 into U+FFFD: a path given that way would
// silently name another directory instead of being refused (or found).
var verbatimString = kong.MapperFunc(func(ctx *kong.DecodeContext, target reflect.Value) error {
	tok, err := ctx.Scan.PopValue("string")
	if err != nil {
		return err
	}
	s, ok := tok.Value.(string)
	if !ok {
		return fmt.Errorf("expected a string, got %v", tok.Value)
	}
	target.SetString(s)
	return nil
})

func isCommand(p *kong.Kong, name string) bool {
	for _, n := range p.Model.Children {
		if n.Name == name || slices.Contains(n.Aliases, name) {
			return true
		}
	}
	return false
}

// reportError prints err and maps it to an exit code.
func reportError(app *App, err error) int {
	var in *interrupted
	if errors.As(context.Cause(app.Ctx), &in) {
		if errors.As(err, new(*interrupted)) {
			fmt.Fprintf(app.Stderr, "Error: %v\n", err)
		} else {
			fmt.Fprintf(app.Stderr, "Error: %v (%v)\n", err, in)
		}
		return in.exitCode()
	}
	var ue *tasks.UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(app.Stderr, "Error: %s\n", ue.Msg)
		if ue.Usage != "" {
			fmt.Fprintf(app.Stderr, "\n%s\n", strings.TrimRight(ue.Usage, "\n"))
		}
		return exitUsage
	}
	var se *tasks.SilentError
	if errors.As(err, &se) {
		return se.Code
	}
	fmt.Fprintf(app.Stderr, "Error: %v\n", err)
	if hint := errorHint(err); hint != "" {
		fmt.Fprintln(app.Stderr, hint)
	}
	return exitFailed
}

// errorHint is the line that says what to do about err, for the typed
// errors whose message states only the fact.
func errorHint(err error) string {
	var nr *registry.NotRespondingError
	if errors.As(err, &nr) && nr.Script != "" {
		return fmt.Sprintf("Start it first: %s start", nr.Script)
	}
	return ""
}
