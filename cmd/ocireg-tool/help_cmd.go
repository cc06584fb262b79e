package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
)

// HelpCmd prints the helper script's help.
type HelpCmd struct{}

// Run prints the help of the command line kong parsed.
func (HelpCmd) Run(app *App, kctx *kong.Context) error {
	return writeHelp(app, kctx.Model)
}

// Layout of the help text: the text wraps at helpWidth columns and the
// help of a command, argument or option starts at column helpColumn.
const (
	helpWidth  = 80
	helpColumn = 28
	// maxInlineOptions is how many optional flags a usage line shows
	// before it says [options] and the command gets its own section.
	maxInlineOptions = 2
)

// writeHelp prints the helper script's help to app.Stdout. The commands,
// their usage lines and options come from model, so every command the
// tool accepts is listed; the template adds the rest (tag strategies,
// modes, the effective configuration, examples). When the configuration
// is invalid it still prints the commands.
func writeHelp(app *App, model *kong.Application) error {
	script := shellquote.Word(app.Script)
	c, err := config.Load(config.Sources{Environ: app.Environ})
	if err != nil {
		c, _ = config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": "/"})
		if app.Script == "" {
			script = "container-registry.sh"
		}
	} else {
		script = app.ScriptName(c)
	}
	rest, err := generator.Help(c, script)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	writeCommandHelp(&b, model, script)
	b.Write(rest)
	_, err = app.Stdout.Write(b.Bytes())
	return err
}

// writeCommandHelp writes the usage line, one line per visible command
// (usage and help) and an options section for each command whose options
// do not fit on its usage line.
func writeCommandHelp(w io.Writer, model *kong.Application, script string) {
	fmt.Fprintf(w, "Usage: %s <command> [options]\n\n", script)
	fmt.Fprintf(w, "%s (ocireg-tool %s).\n\n", strings.TrimSuffix(model.Help, "."), buildinfo.Version)
	fmt.Fprintln(w, "Commands:")
	var sections []*kong.Node
	for _, n := range model.Leaves(true) {
		usage, own := usageLine(n)
		writeRow(w, usage, n.Help)
		if own {
			sections = append(sections, n)
		}
	}
	described := map[string]string{}
	for _, n := range sections {
		writeOptions(w, n, described)
	}
	fmt.Fprintln(w)
}

// usageLine is a command's path, its arguments and its flags, as in
// "gc [--yes] [--delete-untagged]". Required flags are always shown;
// optional ones only up to maxInlineOptions, else the line ends in
// [options] and own reports that the command needs an options section.
func usageLine(n *kong.Node) (line string, own bool) {
	parts := []string{n.Path()}
	var args []string
	closing := 0
	for _, p := range n.Positional {
		s := p.Summary()
		if !p.Required {
			s = strings.TrimSuffix(s, "]")
			closing++
		}
		args = append(args, s)
	}
	if len(args) > 0 {
		parts = append(parts, strings.Join(args, " ")+strings.Repeat("]", closing))
	}
	var optional []string
	for _, f := range visibleFlags(n) {
		if f.Required {
			parts = append(parts, flagUsage(f))
		} else {
			optional = append(optional, "["+flagUsage(f)+"]")
		}
	}
	if len(optional) > maxInlineOptions {
		return strings.Join(append(parts, "[options]"), " "), true
	}
	return strings.Join(append(parts, optional...), " "), false
}

// writeOptions writes the options section of n: its arguments and flags
// with their help. A flag described word for word in an earlier section
// (described maps name and help to that section's command) is only named.
func writeOptions(w io.Writer, n *kong.Node, described map[string]string) {
	fmt.Fprintf(w, "\n%s options:\n", strings.ToUpper(n.Path()[:1])+n.Path()[1:])
	for _, p := range n.Positional {
		writeRow(w, "<"+p.Name+">", p.Help)
	}
	flags := visibleFlags(n)
	short := false
	for _, f := range flags {
		short = short || f.Short != 0
	}
	var shared []string
	from := map[string][]string{}
	for _, f := range flags {
		key := f.Name + "\x00" + f.Help
		if first, ok := described[key]; ok {
			if len(from[first]) == 0 {
				shared = append(shared, first)
			}
			from[first] = append(from[first], "--"+f.Name)
			continue
		}
		described[key] = n.Path()
		name := flagUsage(f)
		switch {
		case f.Short != 0:
			name = fmt.Sprintf("-%c, %s", f.Short, name)
		case short:
			name = "    " + name
		}
		help := f.Help
		if len(f.Envs) > 0 {
			help += " ($" + strings.Join(f.Envs, ", $") + ")"
		}
		writeRow(w, name, help)
	}
	for _, first := range shared {
		for _, l := range wrap("As for "+first+": "+strings.Join(from[first], ", ")+".", helpWidth-2) {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

// visibleFlags are the flags of n that help shows.
func visibleFlags(n *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, f := range n.Flags {
		if !f.Hidden {
			out = append(out, f)
		}
	}
	return out
}

// flagUsage is "--name" for a switch and "--name VALUE" otherwise.
func flagUsage(f *kong.Flag) string {
	if f.IsBool() || f.IsCounter() {
		return "--" + f.Name
	}
	return "--" + f.Name + " " + placeholder(f)
}

// placeholder names a flag's value: the flag's placeholder tag, else what
// its kong type reads, else the last word of its name in capitals
// (--src-authfile AUTHFILE).
func placeholder(f *kong.Flag) string {
	switch {
	case f.PlaceHolder != "":
		return f.PlaceHolder
	case f.Tag.Type == "existingfile" || f.Tag.Type == "filecontent":
		return "FILE"
	case f.Tag.Type == "existingdir":
		return "DIR"
	case f.Tag.Type == "path":
		return "PATH"
	}
	return strings.ToUpper(f.Name[strings.LastIndex(f.Name, "-")+1:])
}

// writeRow writes left, indented, and text wrapped to helpWidth from
// helpColumn on; a left part too wide for the column gets a line of its own.
func writeRow(w io.Writer, left, text string) {
	left = "  " + left
	if len(left) > helpColumn-2 {
		fmt.Fprintln(w, left)
		left = ""
	}
	lines := wrap(text, helpWidth-helpColumn)
	if len(lines) == 0 {
		lines = []string{""}
	}
	for _, l := range lines {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-*s%s", helpColumn, left, l), " "))
		left = ""
	}
}

// wrap splits text into lines of at most width characters, breaking at
// spaces (a longer word gets a line of its own).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
