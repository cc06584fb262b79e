// Package templates holds every text ocireg-tool generates, as Go
// text/template files rendered by package generator with sprig functions.
package templates

import "embed"

// FS holds the template files.
//
//go:embed *.tmpl
var FS embed.FS
