package server

import (
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
)

// The configuration helpers live in internal/testcfg (regconfig's tests
// use them too); these short names keep this package's call sites as
// they were.

func withYAML(t *testing.T, vars config.Vars, yml string) *config.Config {
	t.Helper()
	return testcfg.WithYAML(t, vars, yml)
}

func freePort(t *testing.T) string { t.Helper(); return testcfg.FreePort(t) }

var secure = testcfg.Secure
