package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseDump: the reader never panics, and whatever it accepts survives
// a round trip through FormatDump.
func FuzzParseDump(f *testing.F) {
	f.Add("A=\"1\"\nexport B=\"two words\"\n")
	f.Add("A=\"line \\\nnext\"\n")
	f.Add("do_x() {\n\techo\n}\nA='x'\n")
	f.Add("python do_y () {\n    pass\n}\nA=plain\n")
	f.Add(`A="{\"k\": \"\$v\"}" # c` + "\n")
	if data, err := os.ReadFile("testdata/bitbake-e-base-files.txt"); err == nil {
		f.Add(string(data[:20000]))
	}
	f.Fuzz(func(t *testing.T, in string) {
		vars, err := ParseDump(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, v := range vars {
			if strings.Contains(v, "\r") {
				return
			}
		}
		again, err := ParseDump(strings.NewReader(FormatDump(vars)), "roundtrip")
		if err != nil {
			t.Fatalf("round trip of %q failed: %v\n%s", in, err, FormatDump(vars))
		}
		if len(again) != len(vars) {
			t.Fatalf("round trip: %d vars, want %d", len(again), len(vars))
		}
		for k, v := range vars {
			if again[k] != v {
				t.Fatalf("round trip %s: %q, want %q", k, again[k], v)
			}
		}
	})
}
