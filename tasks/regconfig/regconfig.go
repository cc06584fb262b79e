// Package regconfig reads the registry's distribution configuration
// (registry-config.yml) with distribution's own parser, makes it agree with
// the tool's configuration (port, TLS, htpasswd) and checks every key the
// embedded registry cannot honour, naming it. Read never writes: verify
// uses it on a live storage; serve, start and gc add the files a running
// registry needs (EnsureFile, Load).
package regconfig

import (
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"

	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	storagemiddleware "github.com/distribution/distribution/v3/registry/storage/driver/middleware"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

// What this build compiles in, for checkConfig and its messages (serve
// imports the same packages).
var (
	storageMiddlewares = []string{"redirect"}
	authTypes          = []string{"htpasswd", "none"}
)

// EnsureFile makes sure the storage directory has a registry-config.yml.
// A storage directory chosen through CONTAINER_REGISTRY_STORAGE at run time
// has none (generate wrote it into the baked storage); it gets one rendered
// from the effective configuration. An existing file is never touched: it
// belongs to the user. It reports whether it wrote the file.
func EnsureFile(c *config.Config) (bool, error) {
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
	if _, err := safefile.WriteAtomic(c.RegistryConfig(), data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// Adjustment describes one place where the effective configuration differs
// from registry-config.yml, for the log.
type Adjustment string

// Read parses registry-config.yml with distribution's own parser (so
// REGISTRY_* environment overrides documented by distribution apply too)
// and makes it agree with the tool's configuration c, which carries the
// environment overrides of CONTAINER_REGISTRY_URL / _SECURE / _AUTH:
//
//   - the listen port is the port of CONTAINER_REGISTRY_URL (the host part of
//     http.addr is kept), so `CONTAINER_REGISTRY_URL=localhost:5001` runs a
//     second registry from the same generated files;
//   - secure mode adds http.tls with pki/server.{crt,key} when the file has no
//     certificate, insecure mode removes http.tls;
//   - http.tls.minimumtls defaults to tls1.2 in secure mode;
//   - auth on adds auth.htpasswd with auth/htpasswd when the file has no
//     htpasswd section (replacing auth: none), auth off removes it;
//   - an in-memory blob descriptor cache over filesystem storage is
//     dropped (see dropMemoryCache);
//   - middleware entries with disabled: true are dropped;
//   - (Load only) http.secret, when unset, is read from (or first written
//     to) the storage's http.secret file (0600), so upload state survives
//     restarts; with an S3 backend it is the backend's
//     /ocireg-tool/http.secret, shared by every replica;
//   - CONTAINER_REGISTRY_BACKEND and _REDIS set storage and redis (see
//     applyBackend).
//
// Everything else (log, storage, health, headers, notifications, ...) is the
// file's, and works as distribution documents it: a key the embedded
// registry cannot honour is a *ConfigError naming the key, found here
// rather than by a panic in distribution or silently ignored.
func Read(c *config.Config) (*configuration.Configuration, []Adjustment, error) {
	cfg, adj, _, err := read(c)
	return cfg, adj, err
}

// ReadStorage is Read, and the storage driver its check of the storage
// section opened: gc, verify and status work through it, so that one
// command opens its storage once.
func ReadStorage(c *config.Config) (*configuration.Configuration, driver.StorageDriver, error) {
	cfg, _, d, err := read(c)
	return cfg, d, err
}

// read is Read, with the storage driver the check opened.
func read(c *config.Config) (*configuration.Configuration, []Adjustment, driver.StorageDriver, error) {
	path := c.RegistryConfig()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		// A storage without its file (chosen through the environment):
		// what EnsureFile would write, without writing it.
		data, err = generator.RegistryConfigYAML(c)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading registry config: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	adj := reconcile(c, cfg)
	more, err := applyBackend(c, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	adj = append(adj, more...)
	errs, d := checkConfig(cfg)
	if len(errs) > 0 {
		return nil, nil, nil, &ConfigError{File: path, Errs: errs}
	}
	adj = append(adj, dropDisabledMiddleware(cfg)...)
	return cfg, adj, d, nil
}

// Load is Read for a registry about to run: an unset http.secret is read
// from (or first written to) the storage's http.secret file.
func Load(c *config.Config) (*configuration.Configuration, []Adjustment, error) {
	cfg, adj, d, err := read(c)
	if err != nil {
		return nil, nil, err
	}
	if cfg.HTTP.Secret == "" && S3(cfg) {
		if cfg.HTTP.Secret, err = ensureSharedSecret(context.Background(), d); err != nil {
			return nil, nil, err
		}
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

// parseConfig is configuration.Parse with its panics (several storage
// drivers, one of them from a REGISTRY_STORAGE_* variable) turned into an
// error.
func parseConfig(data []byte) (cfg *configuration.Configuration, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return configuration.Parse(bytes.NewReader(data))
}

// reconcile applies the rules documented on Load and reports what it
// changed.
func reconcile(c *config.Config, cfg *configuration.Configuration) []Adjustment {
	var adj []Adjustment
	if cfg.HTTP.Net == "" {
		cfg.HTTP.Net = "tcp"
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

	t := &cfg.HTTP.TLS
	switch {
	case c.Secure && t.Certificate == "" && t.LetsEncrypt.CacheFile == "":
		t.Certificate, t.Key = c.ServerCert(), c.ServerKey()
		adj = append(adj, Adjustment("http.tls added (secure mode): "+c.ServerCert()))
	case !c.Secure && (t.Certificate != "" || t.LetsEncrypt.CacheFile != ""):
		*t = configuration.TLS{}
		adj = append(adj, Adjustment("http.tls removed (CONTAINER_REGISTRY_SECURE=0)"))
	}
	if c.Secure && t.MinimumTLS == "" {
		t.MinimumTLS = "tls1.2"
	}

	if a := dropMemoryCache(cfg); a != "" {
		adj = append(adj, a)
	}

	_, hasHtpasswd := cfg.Auth["htpasswd"]
	switch {
	case c.Auth && !hasHtpasswd:
		if cfg.Auth == nil {
			cfg.Auth = configuration.Auth{}
		}
		for typ := range cfg.Auth {
			if strings.EqualFold(typ, "none") {
				delete(cfg.Auth, typ)
				adj = append(adj, Adjustment("auth: none replaced (auth is on)"))
			}
		}
		cfg.Auth["htpasswd"] = configuration.Parameters{"realm": "ocireg-tool", "path": c.HtpasswdFile()}
		adj = append(adj, Adjustment("auth.htpasswd added: "+c.HtpasswdFile()))
	case !c.Auth && hasHtpasswd:
		delete(cfg.Auth, "htpasswd")
		adj = append(adj, Adjustment("auth.htpasswd removed (auth is off)"))
	}
	return adj
}

// dropMemoryCache removes an in-memory blob descriptor cache in front of
// filesystem storage. It remembers every blob the registry has seen and
// keeps answering for it after its files are gone (data/ removed or
// emptied under the running registry): a push then skips the upload,
// writes its tags and reports success, and nothing pulls. Without it a
// blob lookup reads two small files, which costs a re-push nothing
// measurable.
func dropMemoryCache(cfg *configuration.Configuration) Adjustment {
	if cfg.Storage.Type() != "filesystem" {
		return ""
	}
	p, ok := cfg.Storage["cache"]
	if !ok {
		return ""
	}
	key, v := "blobdescriptor", p["blobdescriptor"]
	if v == nil {
		key, v = "layerinfo", p["layerinfo"]
	}
	if v != "inmemory" {
		return ""
	}
	delete(cfg.Storage, "cache")
	return Adjustment("storage.cache." + key + " inmemory dropped: over filesystem storage it answers for blobs whose files are gone")
}

// dropDisabledMiddleware removes the middleware entries marked disabled,
// which distribution itself would still apply.
func dropDisabledMiddleware(cfg *configuration.Configuration) []Adjustment {
	var adj []Adjustment
	for _, hook := range slices.Sorted(maps.Keys(cfg.Middleware)) {
		list := cfg.Middleware[hook]
		kept := list[:0]
		for i, mw := range list {
			if mw.Disabled {
				adj = append(adj, Adjustment(fmt.Sprintf("middleware.%s[%d] (%s) skipped: disabled", hook, i, mw.Name)))
				continue
			}
			kept = append(kept, mw)
		}
		cfg.Middleware[hook] = kept
	}
	return adj
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
	if _, err := safefile.WriteAtomic(file, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}

// ConfigError is a registry-config.yml that the embedded registry cannot
// run as written: one KeyError per key.
type ConfigError struct {
	File string
	Errs []*KeyError
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, k := range e.Errs {
		lines[i] = e.File + ": " + k.Error()
	}
	return strings.Join(lines, "\n")
}

// KeyError is one key of the distribution configuration, as a dotted path
// (storage.s3, middleware.storage[0]), and what is wrong with it.
type KeyError struct {
	Key string
	Msg string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Msg }

// keyErrors collects the problems checkConfig finds.
type keyErrors []*KeyError

func (ke *keyErrors) add(key, format string, args ...any) {
	*ke = append(*ke, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// checkConfig finds every key of the effective configuration that the
// embedded registry cannot honour as distribution documents it, and every
// value that would make handlers.NewApp panic or that distribution would
// silently ignore. It reads no file named by the configuration (GC and
// verify load the configuration before start creates them); Serve checks
// those.
func checkConfig(cfg *configuration.Configuration) ([]*KeyError, driver.StorageDriver) {
	var ke keyErrors
	ke.log(&cfg.Log)
	d := ke.storage(cfg)
	ke.auth(cfg.Auth)
	ke.middleware(cfg.Middleware, d)
	ke.http(&cfg.HTTP)
	ke.notifications(&cfg.Notifications)
	ke.redis(&cfg.Redis)
	ke.health(&cfg.Health)
	if cfg.Proxy.RemoteURL != "" {
		ke.add("proxy.remoteurl", "a pull-through cache cannot be pushed to, and ocireg-tool's registry is filled by push and import")
	}
	ke.validation(&cfg.Validation)
	return ke, d
}

func (ke *keyErrors) log(l *configuration.Log) {
	switch l.Formatter {
	case "", "text", "json", "logstash":
	default:
		ke.add("log.formatter", "%q is not a log format (text, json, logstash)", l.Formatter)
	}
	for i, h := range l.Hooks {
		if h.Disabled {
			continue
		}
		key := fmt.Sprintf("log.hooks[%d]", i)
		if h.Type != "mail" {
			ke.add(key+".type", "%q is not a log hook type (mail)", h.Type)
			continue
		}
		if len(h.Levels) == 0 {
			ke.add(key+".levels", "required: the hook fires for no level")
		}
		for j, lv := range h.Levels {
			if _, err := logrus.ParseLevel(lv); err != nil {
				ke.add(fmt.Sprintf("%s.levels[%d]", key, j), "%q is not a log level", lv)
			}
		}
		if host, _, err := net.SplitHostPort(h.MailOptions.SMTP.Addr); err != nil || host == "" {
			ke.add(key+".options.smtp.addr", "must be host:port, not %q", h.MailOptions.SMTP.Addr)
		}
		if h.MailOptions.SMTP.Insecure {
			// distribution's mailer never reads it: STARTTLS, when offered,
			// always verifies the server's certificate.
			ke.add(key+".options.smtp.insecure", "has no effect in distribution's mail hook; remove it")
		}
		if h.MailOptions.From == "" {
			ke.add(key+".options.from", "required")
		}
		if len(h.MailOptions.To) == 0 {
			ke.add(key+".options.to", "required")
		}
	}
}

// storage checks the storage section and returns the configured driver, or
// nil when it cannot be created.
func (ke *keyErrors) storage(cfg *configuration.Configuration) driver.StorageDriver {
	st := cfg.Storage
	var d driver.StorageDriver
	typ := st.Type() // exactly one: parseConfig made sure
	switch {
	case !slices.Contains(regstore.Drivers, typ):
		ke.add("storage."+typ, "driver not compiled into ocireg-tool (available: %s)", strings.Join(regstore.Drivers, ", "))
	default:
		sd, err := regstore.OpenDriver(context.Background(), typ, st[typ])
		if err != nil {
			ke.add("storage."+typ, "%v", err)
			break
		}
		d = sd
	}
	if p, ok := st["delete"]; ok {
		ke.optionalBool("storage.delete.enabled", p, "enabled")
	}
	if p, ok := st["redirect"]; ok {
		if _, ok := p["disable"].(bool); !ok {
			ke.add("storage.redirect.disable", "must be true or false")
		}
	}
	if p, ok := st["tag"]; ok {
		if v, ok := p["concurrencylimit"]; ok {
			if n, ok := v.(int); !ok || n < 0 {
				ke.add("storage.tag.concurrencylimit", "must be a whole number, 0 or more (0: GOMAXPROCS), not %v", v)
			}
		}
	}
	if p, ok := st["cache"]; ok {
		ke.cache(p, len(cfg.Redis.Options.Addrs) > 0)
	}
	if p, ok := st["maintenance"]; ok {
		ke.maintenance(p)
	}
	return d
}

func (ke *keyErrors) cache(p configuration.Parameters, redis bool) {
	key := "storage.cache.blobdescriptor"
	v, ok := p["blobdescriptor"]
	if !ok {
		key, v = "storage.cache.layerinfo", p["layerinfo"]
	}
	switch v {
	case nil:
	case "inmemory":
		if size, ok := p["blobdescriptorsize"]; ok {
			if n, err := strconv.Atoi(fmt.Sprint(size)); err != nil || n < 0 {
				ke.add("storage.cache.blobdescriptorsize", "must be a whole number, 0 or more (0: no limit), not %v", size)
			}
		}
	case "redis":
		if !redis {
			ke.add(key, "redis needs redis.addrs")
		}
	default:
		ke.add(key, "%v is not a cache (inmemory, redis)", v)
	}
}

func (ke *keyErrors) maintenance(p configuration.Parameters) {
	if v, ok := p["uploadpurging"]; ok {
		const key = "storage.maintenance.uploadpurging"
		m, ok := v.(map[any]any)
		if !ok {
			ke.add(key, "must hold enabled, age, interval and dryrun")
		} else if enabled, ok := ke.optionalBool(key+".enabled", m, "enabled"); !ok || enabled {
			ke.duration(key+".age", m["age"])
			ke.duration(key+".interval", m["interval"])
			if _, ok := m["dryrun"].(bool); !ok {
				ke.add(key+".dryrun", "must be true or false")
			}
		}
	}
	if v, ok := p["readonly"]; ok {
		m, ok := v.(map[any]any)
		if !ok {
			ke.add("storage.maintenance.readonly", "must hold enabled")
		} else {
			ke.optionalBool("storage.maintenance.readonly.enabled", m, "enabled")
		}
	}
}

// ReadOnly reports whether cfg puts the storage in read-only mode
// (storage.maintenance.readonly.enabled, checked by Read).
func ReadOnly(cfg *configuration.Configuration) bool {
	ro, _ := cfg.Storage["maintenance"]["readonly"].(map[any]any)
	enabled, _ := ro["enabled"].(bool)
	return enabled
}

// optionalBool checks that m[name], when present, is a boolean. It returns
// the value and whether it was present.
func (ke *keyErrors) optionalBool(key string, m any, name string) (value, present bool) {
	var v any
	switch m := m.(type) {
	case configuration.Parameters:
		v, present = m[name]
	case map[any]any:
		v, present = m[name]
	}
	if !present {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		ke.add(key, "must be true or false, not %v", v)
	}
	return b, true
}

// duration checks a duration written as a string with a unit ("24h").
func (ke *keyErrors) duration(key string, v any) {
	s, ok := v.(string)
	if !ok {
		ke.add(key, "must be a duration such as 24h, not %v", v)
		return
	}
	if d, err := time.ParseDuration(s); err != nil || d <= 0 {
		ke.add(key, "must be a positive duration such as 24h, not %q", s)
	}
}

func (ke *keyErrors) auth(a configuration.Auth) {
	for _, typ := range slices.Sorted(maps.Keys(a)) {
		switch {
		case typ == "htpasswd":
			p := a[typ]
			for _, name := range []string{"realm", "path"} {
				if s, ok := p[name].(string); !ok || s == "" {
					ke.add("auth.htpasswd."+name, "required")
				}
			}
		case strings.EqualFold(typ, "none"):
		default:
			ke.add("auth."+typ, "auth type not compiled into ocireg-tool (available: %s)", strings.Join(authTypes, ", "))
		}
	}
}

func (ke *keyErrors) middleware(hooks map[string][]configuration.Middleware, d driver.StorageDriver) {
	for _, hook := range slices.Sorted(maps.Keys(hooks)) {
		if hook != "storage" && hook != "registry" && hook != "repository" {
			ke.add("middleware."+hook, "not a middleware hook (registry, repository, storage)")
			continue
		}
		for i, mw := range hooks[hook] {
			if mw.Disabled {
				continue
			}
			key := fmt.Sprintf("middleware.%s[%d]", hook, i)
			switch {
			case hook != "storage":
				ke.add(key, "%s middleware %q not compiled into ocireg-tool (none is)", hook, mw.Name)
			case !slices.Contains(storageMiddlewares, mw.Name):
				ke.add(key, "storage middleware %q not compiled into ocireg-tool (available: %s)", mw.Name, strings.Join(storageMiddlewares, ", "))
			case d != nil:
				if _, err := storagemiddleware.Get(context.Background(), mw.Name, mw.Options, d); err != nil {
					ke.add(key, "%s: %v", mw.Name, err)
				}
			}
		}
	}
}

func (ke *keyErrors) http(h *configuration.HTTP) {
	if h.Net != "tcp" {
		ke.add("http.net", "%q is not supported: the helper reaches the registry over TCP", h.Net)
	}
	if h.Prefix != "" && h.Prefix != "/" {
		ke.add("http.prefix", "not supported: the helper, its clients and the targets reach the registry at /v2/")
	}
	if h.Host != "" {
		if u, err := url.Parse(h.Host); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ke.add("http.host", "must be a URL such as https://registry.example.com:5000, not %q", h.Host)
		}
	}
	t := &h.TLS
	if t.LetsEncrypt.CacheFile != "" {
		ke.add("http.tls.letsencrypt", "not supported by the local registry; use certificate and key")
	}
	if t.Certificate != "" {
		if t.Key == "" {
			ke.add("http.tls.key", "required with http.tls.certificate")
		}
		if len(t.ClientCAs) > 0 {
			ke.add("http.tls.clientcas", "client certificates are not supported: the helper's own commands have none")
		}
		minimum, ok := TLSVersions[strings.ToLower(t.MinimumTLS)]
		switch {
		case ok:
		case strings.EqualFold(t.MinimumTLS, "tls1.0"), strings.EqualFold(t.MinimumTLS, "tls1.1"):
			ke.add("http.tls.minimumtls", "%s is below ocireg-tool's floor (tls1.2, tls1.3)", t.MinimumTLS)
		default:
			ke.add("http.tls.minimumtls", "%q is not a TLS version (tls1.2, tls1.3)", t.MinimumTLS)
		}
		if len(t.CipherSuites) > 0 && minimum == tls.VersionTLS13 {
			ke.add("http.tls.ciphersuites", "TLS 1.3 suites are not configurable: remove ciphersuites or set minimumtls to tls1.2")
		}
		for i, name := range t.CipherSuites {
			if _, err := CipherSuite(name); err != nil {
				ke.add(fmt.Sprintf("http.tls.ciphersuites[%d]", i), "%v", err)
			}
		}
	}
	d := &h.Debug
	if d.Addr != "" {
		if _, _, err := net.SplitHostPort(d.Addr); err != nil {
			ke.add("http.debug.addr", "must be host:port, not %q", d.Addr)
		}
	}
	if d.Prometheus.Enabled && d.Addr == "" {
		ke.add("http.debug.prometheus.enabled", "needs http.debug.addr: the metrics are served by the debug server")
	}
	if p := d.Prometheus.Path; p != "" && !strings.HasPrefix(p, "/") {
		ke.add("http.debug.prometheus.path", "must start with /, not %q", p)
	}
}

// eventActions are the actions of registry events.
var eventActions = []string{"pull", "push", "mount", "delete"}

func (ke *keyErrors) notifications(n *configuration.Notifications) {
	for i, ep := range n.Endpoints {
		if ep.Disabled {
			continue
		}
		key := fmt.Sprintf("notifications.endpoints[%d]", i)
		if ep.Name == "" {
			ke.add(key+".name", "required")
		}
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ke.add(key+".url", "must be an http or https URL, not %q", ep.URL)
		}
		for j, a := range ep.Ignore.Actions {
			if !slices.Contains(eventActions, a) {
				ke.add(fmt.Sprintf("%s.ignore.actions[%d]", key, j), "%q is not an event action (%s)", a, strings.Join(eventActions, ", "))
			}
		}
	}
}

func (ke *keyErrors) redis(r *configuration.Redis) {
	if !reflect.ValueOf(*r).IsZero() && len(r.Options.Addrs) == 0 {
		ke.add("redis.addrs", "required when redis is configured")
	}
	if (r.TLS.Certificate == "") != (r.TLS.Key == "") {
		ke.add("redis.tls", "certificate and key go together")
	}
}

func (ke *keyErrors) health(h *configuration.Health) {
	seen := map[string]bool{}
	name := func(key, name string) {
		switch {
		case name == "":
			ke.add(key, "required")
		case seen[name]:
			ke.add(key, "%q is checked twice", name)
		}
		seen[name] = true
	}
	nonNegative := func(key string, d time.Duration) {
		if d < 0 {
			ke.add(key, "must not be negative")
		}
	}
	nonNegative("health.storagedriver.interval", h.StorageDriver.Interval)
	for i, f := range h.FileCheckers {
		key := fmt.Sprintf("health.file[%d]", i)
		name(key+".file", f.File)
		nonNegative(key+".interval", f.Interval)
	}
	for i, c := range h.HTTPCheckers {
		key := fmt.Sprintf("health.http[%d]", i)
		name(key+".uri", c.URI)
		if u, err := url.Parse(c.URI); c.URI != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			ke.add(key+".uri", "must be an http or https URL, not %q", c.URI)
		}
		nonNegative(key+".interval", c.Interval)
		nonNegative(key+".timeout", c.Timeout)
	}
	for i, c := range h.TCPCheckers {
		key := fmt.Sprintf("health.tcp[%d]", i)
		name(key+".addr", c.Addr)
		if _, _, err := net.SplitHostPort(c.Addr); c.Addr != "" && err != nil {
			ke.add(key+".addr", "must be host:port, not %q", c.Addr)
		}
		nonNegative(key+".interval", c.Interval)
		nonNegative(key+".timeout", c.Timeout)
	}
}

func (ke *keyErrors) validation(v *configuration.Validation) {
	urls := v.Manifests.URLs
	for _, l := range []struct {
		key string
		res []string
	}{{"allow", urls.Allow}, {"deny", urls.Deny}} {
		for i, re := range l.res {
			if _, err := regexp.Compile(re); err != nil {
				ke.add(fmt.Sprintf("validation.manifests.urls.%s[%d]", l.key, i), "%v", err)
			}
		}
	}
}

// TLSVersions are the http.tls.minimumtls values the registry accepts.
var TLSVersions = map[string]uint16{
	"tls1.2": tls.VersionTLS12,
	"tls1.3": tls.VersionTLS13,
}

// CipherSuite returns the id of a TLS 1.2 cipher suite named as in
// crypto/tls (and distribution's documentation). Only AEAD suites (GCM,
// ChaCha20-Poly1305) are allowed: CBC suites, which Go still counts as
// secure, are refused with those Go calls insecure; TLS 1.3 suites are not
// configurable.
func CipherSuite(name string) (uint16, error) {
	for _, s := range tls.CipherSuites() {
		if s.Name != name {
			continue
		}
		switch {
		case !slices.Contains(s.SupportedVersions, tls.VersionTLS12):
			return 0, fmt.Errorf("%s is a TLS 1.3 suite; TLS 1.3 suites are not configurable", name)
		case !strings.Contains(name, "_GCM_") && !strings.Contains(name, "_CHACHA20_POLY1305"):
			return 0, fmt.Errorf("%s is not an AEAD suite (CBC): only GCM and ChaCha20-Poly1305 suites are allowed", name)
		}
		return s.ID, nil
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return 0, fmt.Errorf("%s is insecure and not allowed", name)
		}
	}
	return 0, fmt.Errorf("%q is not a TLS cipher suite", name)
}
