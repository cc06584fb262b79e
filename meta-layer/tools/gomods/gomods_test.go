package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIncludesUpToDate fails when go.mod/go.sum changed without
// `make layer-gomods`.
func TestIncludesUpToDate(t *testing.T) {
	c := Config{
		ModuleDir: "../../..",
		Packages:  []string{"./cmd/ocireg-tool"},
		RecipeDir: "../../recipes-containers/ocireg-tool",
		BPN:       "ocireg-tool",
		OECoreDir: os.Getenv("OECORE_DIR"),
	}
	inc, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{c.GoModsInc(), inc.GoMods}, {c.LicensesInc(), inc.Licenses}} {
		old, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if string(old) != string(f.data) {
			t.Errorf("%s is out of date with go.mod/go.sum: run `make layer-gomods` (with OECORE_DIR set when a module brings a new license text)\n--- want\n%s", filepath.Base(f.path), f.data)
		}
	}
	if len(inc.Unknown) > 0 {
		t.Errorf("license files with no known license: %v; identify them in meta-layer/files/license-hashes.csv", inc.Unknown)
	}
	if !strings.Contains(string(inc.GoMods), "gomod://github.com/alecthomas/kong;version=") {
		t.Errorf("go-mods include lacks a direct dependency:\n%s", inc.GoMods)
	}
}

func TestUnescapePath(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/!burnt!sushi/toml": "github.com/BurntSushi/toml",
		"golang.org/x/net":             "golang.org/x/net",
	} {
		if got := unescapePath(in); got != want {
			t.Errorf("unescapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFoldURISortsShorterPathsFirst(t *testing.T) {
	a := "gomod://github.com/a/b;version=v1"
	b := "gomod://github.com/a/b/v2;version=v2"
	if !(foldURI(a) < foldURI(b)) {
		t.Errorf("%s should sort before %s", a, b)
	}
}

func TestExistingHashes(t *testing.T) {
	inc := filepath.Join(t.TempDir(), "x-licenses.inc")
	os.WriteFile(inc, []byte(`LIC_FILES_CHKSUM += "\
    file://pkg/mod/a@v1/LICENSE;md5=0123456789abcdef0123456789abcdef;spdx=Apache-2.0 \
    file://pkg/mod/b@v1/LICENSE;md5=fedcba9876543210fedcba9876543210;spdx=Unknown \
    file://pkg/mod/c@v1/LICENSE;md5=00000000000000000000000000000000;spdx=MIT+AND+BSD-3-Clause \
"
`), 0o644)
	got, err := ExistingHashes(inc)
	if err != nil {
		t.Fatal(err)
	}
	if got["0123456789abcdef0123456789abcdef"] != "Apache-2.0" || got["00000000000000000000000000000000"] != "MIT AND BSD-3-Clause" || len(got) != 2 {
		t.Errorf("got %v", got)
	}
}
