package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config names the recipe directory and where licenses are identified.
type Config struct {
	ModuleDir string
	Packages  []string
	RecipeDir string // holds <bpn>-go-mods.inc and <bpn>-licenses.inc
	BPN       string
	OECoreDir string // optional openembedded-core checkout
}

// Paths of the two includes.
func (c Config) GoModsInc() string   { return filepath.Join(c.RecipeDir, c.BPN+"-go-mods.inc") }
func (c Config) LicensesInc() string { return filepath.Join(c.RecipeDir, c.BPN+"-licenses.inc") }

// Render computes both includes for c.
func Render(c Config) (*Includes, error) {
	var csvs, dirs []string
	if c.OECoreDir != "" {
		csvs = append(csvs, filepath.Join(c.OECoreDir, "meta", "files", "license-hashes.csv"))
		dirs = append(dirs, filepath.Join(c.OECoreDir, "meta", "files", "common-licenses"))
	}
	if layerCSV := filepath.Join(c.RecipeDir, "..", "..", "files", "license-hashes.csv"); exists(layerCSV) {
		csvs = append(csvs, layerCSV)
	}
	known, err := LoadKnown(csvs, dirs, c.LicensesInc())
	if err != nil {
		return nil, err
	}
	return Generate(Options{ModuleDir: c.ModuleDir, Packages: c.Packages, KnownHashes: known})
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func main() {
	var c Config
	var pkgs string
	check := flag.Bool("check", false, "only compare; exit 1 when the includes are out of date")
	flag.StringVar(&c.ModuleDir, "C", ".", "main module directory")
	flag.StringVar(&pkgs, "pkgs", "./cmd/ocireg-tool", "packages the recipe builds (GO_INSTALL), space separated")
	flag.StringVar(&c.RecipeDir, "recipe-dir", "meta-layer/recipes-containers/ocireg-tool", "recipe directory")
	flag.StringVar(&c.BPN, "bpn", "ocireg-tool", "recipe base name")
	flag.StringVar(&c.OECoreDir, "oecore", os.Getenv("OECORE_DIR"), "openembedded-core checkout for license identification (default $OECORE_DIR)")
	flag.Parse()
	c.Packages = strings.Fields(pkgs)

	inc, err := Render(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gomods:", err)
		os.Exit(1)
	}
	for _, u := range inc.Unknown {
		fmt.Fprintf(os.Stderr, "gomods: warning: unknown license %s (set OECORE_DIR or add its md5 to files/license-hashes.csv)\n", u)
	}
	stale := false
	for _, f := range []struct {
		path string
		data []byte
	}{{c.GoModsInc(), inc.GoMods}, {c.LicensesInc(), inc.Licenses}} {
		old, _ := os.ReadFile(f.path)
		if bytes.Equal(old, f.data) {
			fmt.Printf("%s: up to date\n", f.path)
			continue
		}
		stale = true
		if *check {
			fmt.Printf("%s: out of date (run `make layer-gomods`)\n", f.path)
			continue
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gomods:", err)
			os.Exit(1)
		}
		fmt.Printf("%s: written\n", f.path)
	}
	if *check && stale {
		os.Exit(1)
	}
}
