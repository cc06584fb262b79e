package generator

import (
	"fmt"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// SecretsStep names the step that ensures the secrets; it decides whether
// auth/ is set up when no password is configured.
type SecretsStep int

const (
	// AtGenerate is `generate`: auth/ is written only when a password is
	// configured (CONTAINER_REGISTRY_PASSWORD); otherwise the first start
	// makes it, as meta-virtualization's container-registry.sh documents.
	AtGenerate SecretsStep = iota
	// AtStart is `start`: with auth on, auth/ is always set up, with a new
	// random password when none is known yet.
	AtStart
)

// SecretsReport says what EnsureSecrets found or made. A part is nil when
// the step did not apply (PKI outside secure mode, Auth with auth off or
// left to start).
type SecretsReport struct {
	PKI  *PKIReport  `json:"pki,omitempty"`
	Auth *AuthReport `json:"auth,omitempty"`
	// Signing is the signing key (CONTAINER_REGISTRY_SIGN).
	Signing *sign.KeyReport `json:"signing,omitempty"`
}

// EnsureSecrets is the one step that makes the registry's secrets exist:
// in secure mode the PKI (CA and server certificate, keys 0600, never
// replaced), with signing on the signing key (sign.EnsureKey), and with auth on auth/htpasswd and auth/password (0600). The
// password is CONTAINER_REGISTRY_PASSWORD, else the existing password file,
// else (at start) a new random one. now is the issue time of new
// certificates. On error the report says what was done before it.
func EnsureSecrets(c *config.Config, now time.Time, step SecretsStep) (*SecretsReport, error) {
	rep := &SecretsReport{}
	if c.Secure {
		pki, err := ensurePKI(c, now)
		if err != nil {
			return rep, err
		}
		rep.PKI = pki
	}
	if c.Sign {
		k, err := sign.EnsureKey(c)
		if err != nil {
			return rep, fmt.Errorf("signing key: %w", err)
		}
		rep.Signing = k
	}
	if c.Auth && (c.Password != "" || step == AtStart) {
		auth, err := ensureAuth(c)
		if err != nil {
			return rep, fmt.Errorf("setting up authentication: %w", err)
		}
		rep.Auth = auth
	}
	return rep, nil
}
