package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// TestGetenv covers the tool's one environment lookup (config.FromEnviron
// behind App.Getenv) on the shapes an environment list can take.
func TestGetenv(t *testing.T) {
	app := &App{Environ: []string{
		"PLAIN=value",
		"EMPTY=",
		"WITH_EQUALS=a=b==c",
		"TWICE=first",
		"TWICE=second",
		"NO_EQUALS_SIGN",
		"=orphan value",
		"SPACES= a b ",
	}}
	cases := map[string]string{
		"PLAIN":          "value",
		"EMPTY":          "",
		"WITH_EQUALS":    "a=b==c",
		"TWICE":          "second",
		"NO_EQUALS_SIGN": "",
		"":               "",
		"SPACES":         " a b ",
		"UNSET":          "",
	}
	for key, want := range cases {
		if got := app.Getenv(key); got != want {
			t.Errorf("Getenv(%q) = %q, want %q", key, got, want)
		}
	}
}

// Arguments, flags and flag environment variables reach the commands as
// the bytes they are: a path that is not UTF-8 must not turn into another
// path (kong's JSON round trip made "\xff" U+FFFD). Repeatable flags
// (--tag, --platform) still go through kong's splitting, which does the
// same; their values must be ASCII anyway and are refused either way.
func TestArgumentsKeepTheirBytes(t *testing.T) {
	const bad = "/srv/bad\xff/dir"
	t.Setenv("CONTAINER_REGISTRY_STORAGE", bad)
	for _, args := range [][]string{
		{"push", bad},
		{"generate"},
	} {
		var cli CLI
		p, err := newParser(&App{Ctx: context.Background(), Stdout: io.Discard, Stderr: io.Discard}, &cli, func(int) { t.Fatalf("%q: kong exited", args) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		switch args[0] {
		case "push":
			if cli.Push.Target != bad {
				t.Errorf("push: target %q, want %q", cli.Push.Target, bad)
			}
		case "generate":
			if cli.Generate.Storage != bad {
				t.Errorf("generate: storage from the environment %q, want %q", cli.Generate.Storage, bad)
			}
		}
	}
}

// A registry that is down is said plainly by the error; the command adds
// how to start it, as a line a user can paste.
func TestNotRespondingHint(t *testing.T) {
	err := fmt.Errorf("pushing: %w", &registry.NotRespondingError{URL: "http://localhost:5000", Script: "'/my builds/container-registry.sh'"})
	var stderr bytes.Buffer
	app := &App{Ctx: context.Background(), Stderr: &stderr}
	if code := reportError(app, err); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	want := "Error: pushing: Registry not responding at http://localhost:5000\nStart it first: '/my builds/container-registry.sh' start\n"
	if stderr.String() != want {
		t.Fatalf("got %q, want %q", stderr.String(), want)
	}
}
