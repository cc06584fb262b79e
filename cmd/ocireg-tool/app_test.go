package main

import "testing"

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
