package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/golden"
)

// helpCases are the configurations the help text is pinned for.
var helpCases = []struct {
	name string
	env  []string
}{
	{"insecure", []string{"CONTAINER_REGISTRY_INSECURE=1"}},
	{"secure-auth", []string{"CONTAINER_REGISTRY_SECURE=1"}},
	{"secure-tls-only", []string{"CONTAINER_REGISTRY_SECURE=1", "CONTAINER_REGISTRY_AUTH=0"}},
}

// runScript runs the tool as the generated helper script does (the script's
// path set, every message on stdout) with a scratch storage directory and
// env added to the environment. It returns the exit code and the output
// with the storage directory replaced by /STORAGE.
func runScript(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	old := buildinfo.Version
	buildinfo.Version = "golden"
	t.Cleanup(func() { buildinfo.Version = old })
	storage := t.TempDir()
	var out bytes.Buffer
	app := &App{
		Ctx:     context.Background(),
		Stdout:  &out,
		Stderr:  &out,
		Environ: append([]string{"CONTAINER_REGISTRY_STORAGE=" + storage, "TOPDIR=/srv/yocto/build"}, env...),
		Script:  filepath.Join(storage, "container-registry.sh"),
	}
	code := runApp(app, args)
	return code, strings.ReplaceAll(out.String(), storage, "/STORAGE")
}

// model is the kong model of the tool's command line.
func model(t *testing.T, cli any) *kong.Application {
	t.Helper()
	p, err := kong.New(cli, kong.Name("ocireg-tool"), kong.Vars{"version": buildinfo.Version})
	if err != nil {
		t.Fatal(err)
	}
	return p.Model
}

func TestHelpGolden(t *testing.T) {
	for _, tc := range helpCases {
		t.Run(tc.name, func(t *testing.T) {
			code, got := runScript(t, tc.env, "help")
			if code != exitOK {
				t.Fatalf("help: exit %d\n%s", code, got)
			}
			golden.Check(t, filepath.Join("testdata", "help", tc.name+".txt"), got)
		})
	}
}

// commandRows parses the Commands section of help into the text of each
// row (usage and help, whitespace collapsed), keyed by command name.
func commandRows(t *testing.T, help string) map[string]string {
	t.Helper()
	_, section, ok := strings.Cut(help, "\nCommands:\n")
	if !ok {
		t.Fatalf("no Commands section:\n%s", help)
	}
	section, _, _ = strings.Cut(section, "\n\n")
	rows := map[string]string{}
	name := ""
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "   ") {
			name = strings.Fields(line)[0]
		}
		rows[name] = strings.TrimSpace(rows[name] + " " + strings.Join(strings.Fields(line), " "))
	}
	return rows
}

// checkCommands asserts that help has a row for every visible command of
// m, with its help line, and every visible argument and flag somewhere,
// and that hidden commands stay out.
func checkCommands(t *testing.T, m *kong.Application, help string) {
	t.Helper()
	rows := commandRows(t, help)
	flat := strings.Join(strings.Fields(help), " ")
	leaves := m.Leaves(true)
	if len(leaves) < 13 {
		t.Fatalf("model has only %d visible commands", len(leaves))
	}
	for _, n := range leaves {
		row, ok := rows[n.Name]
		if !ok {
			t.Errorf("command %q is missing from help", n.Name)
			continue
		}
		if want := strings.Join(strings.Fields(n.Help), " "); !strings.HasSuffix(row, " "+want) {
			t.Errorf("command %q: row %q does not end with its help %q", n.Name, row, want)
		}
		for _, p := range n.Positional {
			if !strings.Contains(row, "<"+p.Name+">") {
				t.Errorf("command %q: argument <%s> missing from %q", n.Name, p.Name, row)
			}
		}
		for _, f := range n.Flags {
			if !f.Hidden && !strings.Contains(flat, "--"+f.Name) {
				t.Errorf("command %q: flag --%s missing from help", n.Name, f.Name)
			}
		}
	}
	for _, n := range m.Children {
		if n.Hidden && strings.Contains(help, n.Name) {
			t.Errorf("hidden command %q appears in help", n.Name)
		}
	}
}

// Every command of the model is in help with its help line, so a command
// added to CLI cannot be missing from it.
func TestHelpListsEveryCommand(t *testing.T) {
	_, help := runScript(t, nil, "help")
	checkCommands(t, model(t, &CLI{}), help)

	// A command the model gains shows up without touching the help code.
	var extended struct {
		CLI
		Reload struct {
			Wait bool `help:"Wait until the registry answers again."`
		} `cmd:"" help:"Reload the registry configuration."`
	}
	m := model(t, &extended)
	var b bytes.Buffer
	writeCommandHelp(&b, m, "container-registry.sh")
	checkCommands(t, m, b.String())
	if !regexp.MustCompile(`(?m)^  reload \[--wait\] +Reload the registry configuration\.$`).Match(b.Bytes()) {
		t.Errorf("no reload row:\n%s", b.String())
	}
}

// The words existing users and CI scripts look for in help.
func TestHelpContractWords(t *testing.T) {
	for _, tc := range helpCases {
		t.Run(tc.name, func(t *testing.T) {
			_, help := runScript(t, tc.env, "help")
			words := []string{
				"Usage: /STORAGE/container-registry.sh <command>",
				"\n  start ", "\n  stop ", "\n  status ", "\n  push ", "\n  import ", "\n  delete ", "\n  gc ",
				"\n  list ", "\n  tags ", "\n  catalog ", "\n  info ", "\n  verify ", "\n  help ",
				"Push options:", "--tag TAG", "--strategy STRATEGY", "--version VERSION",
				"--use-home-auth", "--authfile", "--credsfile", "--creds", "--token",
				"Import options:", "--src-authfile", "--src-credsfile", "--platform", "oci-archive:FILE",
				"Tag strategies: timestamp, sha, git, branch, semver, version, latest, arch",
				"CONTAINER_REGISTRY_SECURE=1", "CONTAINER_REGISTRY_AUTH=0",
				"URL:        localhost:5000", "Storage:    /STORAGE\n", "Strategy:   timestamp latest",
			}
			secure := tc.name != "insecure"
			auth := tc.name == "secure-auth"
			switch {
			case auth:
				words = append(words, "Mode:       secure (TLS + auth)")
			case secure:
				words = append(words, "Mode:       secure (TLS only)")
			default:
				words = append(words, "Mode:       insecure (HTTP)")
			}
			for _, w := range words {
				if !strings.Contains(help, w) {
					t.Errorf("help lacks %q:\n%s", w, help)
				}
			}
			// The shell original's help had an authentication section
			// naming the credential options; scripts grep help for the
			// word (in lower case, as grep matches by default).
			if !strings.Contains(help, "authentication") {
				t.Errorf("help lacks the word %q:\n%s", "authentication", help)
			}
			_, section, ok := strings.Cut(help, "\nAuthentication:\n")
			section, _, _ = strings.Cut(section, "\n\n")
			if !ok {
				t.Errorf("help has no Authentication section:\n%s", help)
			}
			for _, w := range []string{"--auth-mode", "--credsfile", "--authfile", "--use-home-auth", "--password-stdin",
				"none", "home", "authfile", "credsfile", "env", "CONTAINER_REGISTRY_AUTH_MODE"} {
				if ok && !strings.Contains(section, w) {
					t.Errorf("the Authentication section lacks %q:\n%s", w, section)
				}
			}
			facts := map[string]bool{
				"PKI dir:    /STORAGE/pki\n":           secure,
				"CA cert:    /STORAGE/pki/ca.crt\n":    secure,
				"Password:   /STORAGE/auth/password\n": auth,
			}
			for w, want := range facts {
				if strings.Contains(help, w) != want {
					t.Errorf("help shows %q: %v, want %v", w, !want, want)
				}
			}
		})
	}
}

// No arguments through the script and an unknown command print the same
// help as the help command; the unknown command also says so and fails.
func TestHelpPaths(t *testing.T) {
	_, help := runScript(t, nil, "help")
	code, out := runScript(t, nil)
	if code != exitOK || out != help {
		t.Errorf("no arguments: exit %d, output differs from help:\n%s", code, out)
	}
	code, out = runScript(t, nil, "frobnicate")
	if code != exitUsage || out != "Unknown command: frobnicate\n\n"+help {
		t.Errorf("unknown command: exit %d, output:\n%s", code, out)
	}
}

// An invalid configuration does not stop help from listing the commands.
func TestHelpWithInvalidConfiguration(t *testing.T) {
	code, out := runScript(t, []string{"CONTAINER_REGISTRY_SECURE=1", "CONTAINER_REGISTRY_INSECURE=1"}, "help")
	if code != exitOK {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
	checkCommands(t, model(t, &CLI{}), out)
	if !strings.HasPrefix(out, "Usage: /STORAGE/container-registry.sh <command> [options]\n") {
		t.Errorf("usage line does not name the script:\n%s", out)
	}
}

// kong's own --help lists the visible commands and the flags of one.
func TestKongUsage(t *testing.T) {
	code, out := runScript(t, nil, "--help")
	if code != exitOK || !strings.HasPrefix(out, "Usage: ocireg-tool <command>") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	for _, n := range model(t, &CLI{}).Leaves(true) {
		if !strings.Contains(out, "\n  "+n.Name) {
			t.Errorf("--help lacks %q:\n%s", n.Name, out)
		}
	}
	if strings.Contains(out, "sample-deploy") {
		t.Errorf("--help shows the hidden command:\n%s", out)
	}
	code, out = runScript(t, nil, "push", "--help")
	if code != exitOK || !strings.Contains(out, "Usage: ocireg-tool push [<target>] [flags]") || !strings.Contains(out, "--use-home-auth") {
		t.Errorf("push --help: exit %d\n%s", code, out)
	}
}
