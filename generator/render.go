package generator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"

	"github.com/ocireg-tool/ocireg-tool/templates"
)

// Version is the tool version, set at build time with -ldflags -X.
var Version = "dev"

var (
	parseOnce sync.Once
	parsed    *template.Template
	parseErr  error
)

// funcs is sprig's text function map without the functions that would make
// output depend on the process environment, plus quoting helpers.
func funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["shq"] = ShellQuote
	f["tomlq"] = tomlQuote
	return f
}

// Render executes the named template from package templates.
func Render(name string, data any) ([]byte, error) {
	parseOnce.Do(func() {
		parsed, parseErr = template.New("").Funcs(funcs()).Option("missingkey=error").ParseFS(templates.FS, "*.tmpl")
	})
	if parseErr != nil {
		return nil, fmt.Errorf("parsing templates: %w", parseErr)
	}
	var buf bytes.Buffer
	if err := parsed.ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tomlQuote quotes s as a TOML basic string (JSON strings are valid TOML).
func tomlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
