package generator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"

	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/templates"
)

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
	f["shq"] = shellquote.Quote
	f["tomlq"] = tomlQuote
	f["jsonq"] = tomlQuote
	f["yamlq"] = tomlQuote
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

// tomlQuote quotes s as a JSON string, which is also a TOML basic string
// and a YAML double-quoted scalar (tomlq, jsonq, yamlq in templates).
func tomlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
