package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/distribution/distribution/v3/configuration"

	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/generator/config"
)

// EnsureConfigFile makes sure the storage directory has a registry-config.yml.
// A storage directory chosen through CONTAINER_REGISTRY_STORAGE at run time
// has none (generate wrote it into the baked storage); it gets one rendered
// from the effective configuration. An existing file is never touched: it
// belongs to the user. It reports whether it wrote the file.
func EnsureConfigFile(c *config.Config) (bool, error) {
	if _, err := os.Stat(c.RegistryConfig()); err == nil {
		return false, nil
	} else if !os.IsNotExist(err) {
		return false, fmt.Errorf("checking %s: %w", c.RegistryConfig(), err)
	}
	data, err := generator.RegistryConfigYAML(c)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(c.Storage, 0o755); err != nil {
		return false, fmt.Errorf("creating storage directory: %w", err)
	}
	if _, err := generator.WriteFileAtomic(c.RegistryConfig(), data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// Adjustment describes one place where the effective configuration differs
// from registry-config.yml, for the log.
type Adjustment string

// LoadConfig parses registry-config.yml with distribution's own parser (so
// REGISTRY_* environment overrides documented by distribution apply too) and
// then makes it agree with the tool's configuration c, which carries the
// environment overrides of CONTAINER_REGISTRY_URL / _SECURE / _AUTH:
//
//   - the listen port is the port of CONTAINER_REGISTRY_URL (the host part of
//     http.addr is kept), so `CONTAINER_REGISTRY_URL=localhost:5001` runs a
//     second registry from the same generated files;
//   - secure mode adds http.tls with pki/server.{crt,key} when the file has no
//     certificate, insecure mode removes http.tls;
//   - auth on adds auth.htpasswd with auth/htpasswd when the file has no
//     htpasswd section, auth off removes it (other auth types are kept);
//   - http.tls.minimumtls is raised to tls1.2 when lower or unset;
//   - http.secret, when unset, is read from (or first written to) the
//     storage's http.secret file (0600), so upload state survives restarts.
//
// Everything else (log, storage, health, headers, ...) is the file's.
func LoadConfig(c *config.Config) (*configuration.Configuration, []Adjustment, error) {
	path := c.RegistryConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading registry config: %w", err)
	}
	cfg, err := configuration.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	adj, err := reconcile(c, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.HTTP.Secret == "" {
		secret, err := ensureSecret(c.SecretFile())
		if err != nil {
			return nil, nil, err
		}
		cfg.HTTP.Secret = secret
	}
	return cfg, adj, nil
}

// reconcile applies the rules documented on LoadConfig and reports what it
// changed.
func reconcile(c *config.Config, cfg *configuration.Configuration) ([]Adjustment, error) {
	var adj []Adjustment
	if cfg.HTTP.Net == "" {
		cfg.HTTP.Net = "tcp"
	}
	if cfg.HTTP.Net != "tcp" {
		return nil, fmt.Errorf("http.net %q is not supported (the registry is reached at %s over TCP)", cfg.HTTP.Net, c.URL)
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		host, port = "", ""
	}
	if port != c.Port {
		addr := net.JoinHostPort(host, c.Port)
		adj = append(adj, Adjustment(fmt.Sprintf("http.addr %q -> %q (port of CONTAINER_REGISTRY_URL=%s)", cfg.HTTP.Addr, addr, c.URL)))
		cfg.HTTP.Addr = addr
	}

	tls := &cfg.HTTP.TLS
	switch {
	case c.Secure && tls.Certificate == "" && tls.LetsEncrypt.CacheFile == "":
		tls.Certificate, tls.Key = c.ServerCert(), c.ServerKey()
		adj = append(adj, Adjustment("http.tls added (secure mode): "+c.ServerCert()))
	case !c.Secure && (tls.Certificate != "" || tls.LetsEncrypt.CacheFile != ""):
		*tls = configuration.TLS{}
		adj = append(adj, Adjustment("http.tls removed (CONTAINER_REGISTRY_SECURE=0)"))
	}
	if c.Secure {
		switch strings.ToLower(tls.MinimumTLS) {
		case "tls1.2", "tls1.3":
		default:
			if tls.MinimumTLS != "" {
				adj = append(adj, Adjustment(fmt.Sprintf("http.tls.minimumtls %q raised to tls1.2", tls.MinimumTLS)))
			}
			tls.MinimumTLS = "tls1.2"
		}
	}

	_, hasHtpasswd := cfg.Auth["htpasswd"]
	switch {
	case c.Auth && !hasHtpasswd:
		if cfg.Auth == nil {
			cfg.Auth = configuration.Auth{}
		}
		cfg.Auth["htpasswd"] = configuration.Parameters{"realm": "ocireg-tool", "path": c.HtpasswdFile()}
		adj = append(adj, Adjustment("auth.htpasswd added: "+c.HtpasswdFile()))
	case !c.Auth && hasHtpasswd:
		delete(cfg.Auth, "htpasswd")
		adj = append(adj, Adjustment("auth.htpasswd removed (auth is off)"))
	}
	return adj, nil
}

// ensureSecret returns the secret stored in file, creating it (32 random
// bytes, hex, mode 0600) when missing.
func ensureSecret(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err == nil && strings.TrimSpace(string(data)) != "" {
		if st, err := os.Stat(file); err == nil && st.Mode().Perm() != 0o600 {
			if err := os.Chmod(file, 0o600); err != nil {
				return "", fmt.Errorf("setting mode of %s: %w", file, err)
			}
		}
		return strings.TrimSpace(string(data)), nil
	}
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("reading %s: %w", file, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("creating http secret: %w", err)
	}
	secret := hex.EncodeToString(b)
	if _, err := generator.WriteFileAtomic(file, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}
