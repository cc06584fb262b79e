package generator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Result lists what Generate wrote or found.
type Result struct {
	Script   string
	Config   string
	Tool     string
	Changed  []string // files written (unchanged files are not listed)
	Secrets  *SecretsReport
	Warnings []string
}

// Generate writes the helper script, a copy of the tool, the registry
// configuration and the secrets (EnsureSecrets at generate: the PKI in
// secure mode, auth/ only when a password is configured) into the storage
// directory. Every file is written atomically and only when its content changes, so a
// second run with the same input touches nothing. self is the path of the
// running binary, copied to bin/ocireg-tool.
func Generate(c *config.Config, self string, now time.Time) (*Result, error) {
	res := &Result{Script: c.Script(), Config: c.RegistryConfig(), Tool: c.ToolCopy(), Warnings: c.Warnings}
	if err := c.Backend.CheckCA(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Storage, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	if c.NativeTool == "" {
		c.NativeTool = self
	}
	secrets, err := EnsureSecrets(c, now, AtGenerate)
	if err != nil {
		return nil, err
	}
	res.Secrets = secrets
	if secrets.PKI != nil && len(secrets.PKI.Missing) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"%s does not cover %v; it is kept as is. Remove server.crt and server.key to issue a new one from the same CA",
			c.ServerCert(), secrets.PKI.Missing))
	}
	if err := copyTool(self, c.ToolCopy(), res); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		tmpl, path string
		mode       os.FileMode
	}{
		{"registry-config.yml.tmpl", c.RegistryConfig(), 0o644},
		{"container-registry.sh.tmpl", c.Script(), 0o755},
	} {
		data, err := Render(f.tmpl, templateData(c))
		if err != nil {
			return nil, err
		}
		changed, err := safefile.WriteAtomic(f.path, data, f.mode)
		if err != nil {
			return nil, err
		}
		if changed {
			res.Changed = append(res.Changed, f.path)
		}
	}
	return res, nil
}

// RegistryConfigYAML renders the distribution configuration for c.
func RegistryConfigYAML(c *config.Config) ([]byte, error) {
	return Render("registry-config.yml.tmpl", templateData(c))
}

// Help renders the helper script's help text.
// The last prune is read from the storage (none when it does not read).
func Help(c *config.Config, script string) ([]byte, error) {
	d := templateData(c)
	d["Script"] = script
	if rec, err := runstate.ReadPruneRecord(c); err == nil && rec != nil {
		d["LastPrune"] = rec
	}
	return Render("help.txt.tmpl", d)
}

func templateData(c *config.Config) map[string]any {
	return map[string]any{
		"Version":      buildinfo.Version,
		"Baked":        config.FormatDump(c.BakedVars()),
		"NativeTool":   c.NativeTool,
		"DataDir":      c.DataDir(),
		"Port":         c.Port,
		"Secure":       c.Secure,
		"Auth":         c.Auth,
		"ServerCert":   c.ServerCert(),
		"ServerKey":    c.ServerKey(),
		"Htpasswd":     c.HtpasswdFile(),
		"URL":          c.URL,
		"Namespace":    c.Namespace,
		"Storage":      c.Storage,
		"Mode":         c.Mode(),
		"PKIDir":       c.PKIDir(),
		"CACert":       c.CACert(),
		"Username":     c.Username,
		"PasswordFile": c.PasswordFile(),
		"Strategy":     strings.Join(c.TagStrategy, " "),
		"Strategies":   config.Strategies,
		"AuthModes":    config.AuthModes,
		"Attach":       config.AttachString(c.Attach),
		"Script":       c.Script(),
		"Backend":      backendShown(c),
		"Redis":        c.Redis.Addr,
		"UI":           c.UIURL(),

		"Retention":       retention.FromConfig(c).String(),
		"RetentionOnPush": c.Retention.OnPush,
		"LastPrune":       (*runstate.PruneRecord)(nil), // Help reads it
	}
}

// backendShown is the backend as help shows it ("" for the filesystem).
func backendShown(c *config.Config) string {
	if !c.Backend.S3() {
		return ""
	}
	return c.Backend.String()
}

// copyTool copies the running binary beside the script, unless it is
// already there with the same content.
func copyTool(self, dst string, res *Result) error {
	if self == "" {
		return fmt.Errorf("cannot find the running ocireg-tool binary to copy")
	}
	if a, err := filepath.EvalSymlinks(self); err == nil {
		self = a
	}
	if b, err := filepath.EvalSymlinks(dst); err == nil && b == self {
		return nil
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return fmt.Errorf("reading the running tool: %w", err)
	}
	changed, err := safefile.WriteAtomic(dst, data, 0o755)
	if err != nil {
		return err
	}
	if changed {
		res.Changed = append(res.Changed, dst)
	}
	return nil
}
