// Package depcheck holds the test that keeps the tool's layering: an
// operation (what one command runs) imports only primitives, a primitive
// never imports an operation, and nothing imports the command.
package depcheck

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ocireg-tool/ocireg-tool"

// operations are the packages a command runs, one each; they return
// results and events for cmd/ to render.
var operations = []string{
	"tasks/importer", "tasks/labels", "tasks/push", "tasks/query", "tasks/remove",
	"tasks/sample", "tasks/serve", "tasks/server", "tasks/transfer", "tasks/verify",
}

// primitives are what operations are built from: each owns one piece of
// infrastructure or one decision.
var primitives = []string{
	"config", "generator", "templates",
	"internal/buildinfo", "internal/redact", "internal/safefile", "internal/shellquote",
	"internal/testhook", // fault pause points, compiled out of release builds
	"tasks", "tasks/collect", "tasks/deploy", "tasks/events", "tasks/gc", "tasks/gitinfo", "tasks/imageref",
	"tasks/ocilayout", "tasks/platform", "tasks/redisconn", "tasks/referrers", "tasks/regauth",
	"tasks/regconfig", "tasks/registry", "tasks/regstore", "tasks/replica", "tasks/retention", "tasks/runstate", "tasks/sign", "tasks/taglock",
	"tasks/ui",
}

// others are neither: the command, test support, the end-to-end tests and
// the layer's own tools.
var others = []string{
	"cmd/ocireg-tool",
	"internal/depcheck", "internal/golden", "internal/testcfg", "internal/testgit", "internal/testreg", "internal/testtool",
	"meta-layer/tools/gomods", "tests", "tests/bench",
}

// imports lists the non-test imports of the module's packages that are
// the module's own, by package, relative to the module.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	all := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := rel(f[0])
		all[pkg] = []string{}
		for _, imp := range f[1:] {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				all[pkg] = append(all[pkg], rel(imp))
			}
		}
	}
	return all
}

func rel(p string) string {
	if p == module {
		return "."
	}
	return strings.TrimPrefix(p, module+"/")
}

// Every package is placed in a layer: a new one must be placed here.
func TestEveryPackagePlaced(t *testing.T) {
	for pkg := range imports(t) {
		n := 0
		for _, layer := range [][]string{operations, primitives, others} {
			if slices.Contains(layer, pkg) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("package %s is in %d layers of depcheck_test.go; place it in exactly one (operations, primitives or others)", pkg, n)
		}
	}
}

// The import rules.
func TestLayering(t *testing.T) {
	for pkg, imps := range imports(t) {
		for _, imp := range imps {
			switch {
			case imp == "cmd/ocireg-tool":
				t.Errorf("%s imports the command %s: nothing may", pkg, imp)
			case slices.Contains(operations, pkg) && slices.Contains(operations, imp):
				t.Errorf("operation %s imports operation %s: an operation imports only primitives (move what both need into a primitive)", pkg, imp)
			case slices.Contains(primitives, pkg) && slices.Contains(operations, imp):
				t.Errorf("primitive %s imports operation %s: primitives never import operations", pkg, imp)
			case slices.Contains(primitives, pkg) && slices.Contains(others, imp):
				t.Errorf("primitive %s imports %s, which is not a primitive", pkg, imp)
			case slices.Contains(operations, pkg) && slices.Contains(others, imp):
				t.Errorf("operation %s imports %s, which is not a primitive", pkg, imp)
			}
		}
	}
}
