// Package templates holds every text ocireg-tool generates, as Go
// text/template files rendered by package generator with sprig functions.
package templates

import "embed"

// FS holds the template files.
//
//go:embed *.tmpl
var FS embed.FS

// UI holds the registry browser of serve: html/template pages
// (ui/*.html.tmpl) and the files served as they are (ui/static).
//
//go:embed ui
var UI embed.FS
