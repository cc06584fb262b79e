package config

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
)

// Setting is one variable the tool reads. The table of settings drives
// parsing, defaults, the values baked into the helper script, the class
// defaults test and the documentation of `info`.
type Setting struct {
	Name    string
	Default string
	Doc     string
	// Class is true when the bitbake class declares the variable with this
	// default (tests/layer_test.go compares both ways).
	Class bool
	// Parse checks the value and stores it in c. nil: the setting has no
	// field of its own (it is read by a cross-setting step of Load).
	Parse func(c *Config, v string) error
	// Bake returns the value written into the helper script; nil: the
	// setting is not baked.
	Bake func(c *Config) string
}

// AuthModes are the valid values of CONTAINER_REGISTRY_AUTH_MODE.
var AuthModes = []string{"none", "home", "authfile", "credsfile", "env"}

// Strategies are the valid words of CONTAINER_REGISTRY_TAG_STRATEGY.
var Strategies = []string{"timestamp", "sha", "git", "branch", "semver", "version", "latest", "arch"}

// AttachKinds are the valid words of CONTAINER_REGISTRY_ATTACH: sbom (the
// image's SPDX document and, when the build has one, its sbom-cve-check
// SPDX) and manifest (the package list); "none" alone turns attaching off.
var AttachKinds = []string{"sbom", "manifest"}

// The mode settings are resolved together (see resolveMode).
const (
	varSecure   = "CONTAINER_REGISTRY_SECURE"
	varInsecure = "CONTAINER_REGISTRY_INSECURE"
	varAuth     = "CONTAINER_REGISTRY_AUTH"
	varPassword = "CONTAINER_REGISTRY_PASSWORD"
	varListen   = "CONTAINER_REGISTRY_LISTEN"

	varRetentionKeep = "CONTAINER_REGISTRY_RETENTION_KEEP"
	varRetentionDays = "CONTAINER_REGISTRY_RETENTION_DAYS"
)

// Settings is every variable the tool reads, in the order Load parses them
// (a setting may use the fields of those before it).
var Settings = []Setting{
	{Name: "TOPDIR", Doc: "bitbake build directory; ${TOPDIR} in CONTAINER_REGISTRY_STORAGE expands to it",
		Parse: func(c *Config, v string) error { return absPath(&c.TopDir, v) }, Bake: func(c *Config) string { return c.TopDir }},
	{Name: "CONTAINER_REGISTRY_URL", Default: "localhost:5000", Class: true, Doc: "registry host:port the build host uses",
		Parse: parseURL, Bake: func(c *Config) string { return c.URL }},
	{Name: "CONTAINER_REGISTRY_NAMESPACE", Default: "yocto", Class: true, Doc: "repository namespace of pushed images",
		Parse: parseNamespace, Bake: func(c *Config) string { return c.Namespace }},
	{Name: varInsecure, Default: "0", Class: true, Doc: "1: plain HTTP registry",
		Bake: func(c *Config) string { return BoolString(c.Insecure) }},
	{Name: varSecure, Default: "0", Class: true, Doc: "1: TLS with a generated CA (and htpasswd auth unless CONTAINER_REGISTRY_AUTH=0)",
		Bake: func(c *Config) string { return BoolString(c.Secure) }},
	{Name: varAuth, Default: "", Class: true, Doc: "htpasswd auth in secure mode (empty: follows CONTAINER_REGISTRY_SECURE; 0: TLS only)",
		Bake: func(c *Config) string { return c.raw(varAuth) }},
	{Name: "CONTAINER_REGISTRY_TAG_STRATEGY", Default: "timestamp latest", Class: true, Doc: "space-separated tag strategies",
		Parse: func(c *Config, v string) (err error) {
			c.TagStrategy, err = ParseStrategy(v)
			return err
		}, Bake: func(c *Config) string { return strings.Join(c.TagStrategy, " ") }},
	{Name: "CONTAINER_REGISTRY_ATTACH", Default: "sbom manifest", Class: true, Doc: "build documents push attaches to every image as OCI referrers: sbom (SPDX, with the sbom-cve-check SPDX), manifest (package list); none: nothing",
		Parse: func(c *Config, v string) (err error) {
			c.Attach, err = ParseAttach(v)
			return err
		}, Bake: func(c *Config) string { return AttachString(c.Attach) }},
	{Name: varRetentionKeep, Default: "", Class: true, Doc: "prune keeps the newest N builds of every image (empty or 0: no count limit)",
		Parse: func(c *Config, v string) (err error) {
			c.Retention.Keep, err = parseRetentionCount(v, "builds", "no count limit")
			return err
		}, Bake: func(c *Config) string { return c.raw(varRetentionKeep) }},
	{Name: varRetentionDays, Default: "", Class: true, Doc: "prune keeps the builds younger than D days (empty or 0: no age limit)",
		Parse: func(c *Config, v string) (err error) {
			c.Retention.Days, err = parseRetentionCount(v, "days", "no age limit")
			return err
		}, Bake: func(c *Config) string { return c.raw(varRetentionDays) }},
	{Name: "CONTAINER_REGISTRY_RETENTION_PROTECT", Default: "latest", Class: true, Doc: "space-separated tag patterns (shell globs) prune never removes, nor the builds they tag",
		Parse: parseProtect, Bake: func(c *Config) string { return strings.Join(c.Retention.Protect, " ") }},
	{Name: "CONTAINER_REGISTRY_RETENTION_ON_PUSH", Default: "0", Class: true, Doc: "1: push prunes the images it pushed after every push (with the retention policy)",
		Parse: func(c *Config, v string) (err error) { c.Retention.OnPush, err = parseBool(v); return err },
		Bake:  func(c *Config) string { return BoolString(c.Retention.OnPush) }},
	{Name: "CONTAINER_REGISTRY_STORAGE", Default: "${TOPDIR}/container-registry", Class: true, Doc: "registry data, script, PKI and auth",
		Parse: parseStorage, Bake: func(c *Config) string { return c.Storage }},
	{Name: "CONTAINER_REGISTRY_BACKEND", Default: "", Class: true, Doc: "shared object storage of the registry data: s3://bucket/prefix?endpoint=http://host:8333&region=us-east-1[&ca=FILE] (empty: data/ of the storage directory); credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or CONTAINER_REGISTRY_BACKEND_CREDENTIALS",
		Parse: parseBackend, Bake: func(c *Config) string { return c.Backend.URL }},
	{Name: "CONTAINER_REGISTRY_REDIS", Default: "", Class: true, Doc: "redis host:port[/db] shared by the replicas: blob descriptor cache and the push lock (empty: none)",
		Parse: parseRedis, Bake: func(c *Config) string { return c.raw("CONTAINER_REGISTRY_REDIS") }},
	{Name: "CONTAINER_REGISTRY_BACKEND_CREDENTIALS", Doc: "file (mode 0600) of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, REDIS_PASSWORD for the backend and redis (never baked; empty: AWS_* from the environment)",
		Parse: parseBackendCredentials},
	{Name: "CONTAINER_REGISTRY_SIGN", Default: "0", Class: true, Doc: "1: push (and import --sign) signs every index and platform manifest with a cosign key; generate and start create the key (pki/signing.key, pki/signing.pub) unless CONTAINER_REGISTRY_SIGNING_KEY names one; secure mode does not turn it on",
		Parse: func(c *Config, v string) (err error) { c.Sign, err = parseBool(v); return err },
		Bake:  func(c *Config) string { return BoolString(c.Sign) }},
	{Name: "CONTAINER_REGISTRY_SIGNING_KEY", Default: "", Class: true, Doc: "existing cosign private key (encrypted PEM, ECDSA P-256) push signs with (empty: pki/signing.key, generated)",
		Parse: func(c *Config, v string) error { return absPath(&c.SigningKey, v) }, Bake: func(c *Config) string { return c.SigningKey }},
	{Name: "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE", Default: "", Class: true, Doc: "file (mode 0600) holding the passphrase of CONTAINER_REGISTRY_SIGNING_KEY (empty: COSIGN_PASSWORD from the environment); the passphrase itself is never baked",
		Parse: func(c *Config, v string) error { return absPath(&c.SigningPasswordFile, v) }, Bake: func(c *Config) string { return c.SigningPasswordFile }},
	{Name: "CONTAINER_REGISTRY_USERNAME", Default: "yocto", Class: true, Doc: "htpasswd user of the local registry (secure mode with auth); the env-mode push user is CONTAINER_REGISTRY_USER, read by tasks/regauth",
		Parse: parseUsername, Bake: func(c *Config) string { return c.Username }},
	{Name: varPassword, Doc: "password of the local registry's user: generate and start write it to auth/password and auth/htpasswd (never baked; default: auth/password, else generated at start); with CONTAINER_REGISTRY_AUTH_MODE=env it is also CONTAINER_REGISTRY_USER's push password, which push only sends",
		Parse: parsePassword},
	{Name: "CONTAINER_REGISTRY_CERT_DAYS", Default: "365", Class: true, Doc: "server certificate validity in days",
		Parse: func(c *Config, v string) (err error) { c.CertDays, err = parseDays(v); return err },
		Bake:  func(c *Config) string { return strconv.Itoa(c.CertDays) }},
	{Name: "CONTAINER_REGISTRY_CA_DAYS", Default: "3650", Class: true, Doc: "CA certificate validity in days",
		Parse: func(c *Config, v string) (err error) { c.CADays, err = parseDays(v); return err },
		Bake:  func(c *Config) string { return strconv.Itoa(c.CADays) }},
	{Name: "CONTAINER_REGISTRY_CERT_SAN", Default: "", Class: true, Doc: "extra subjectAltName entries (DNS:name,IP:addr)",
		Parse: func(c *Config, v string) (err error) { c.CertSANs, err = ParseSANs(v); return err },
		Bake:  func(c *Config) string { return c.raw("CONTAINER_REGISTRY_CERT_SAN") }},
	{Name: "CONTAINER_REGISTRY_AUTH_MODE", Default: "none", Class: true, Doc: "push credentials: " + strings.Join(AuthModes, ", "),
		Parse: parseAuthMode, Bake: func(c *Config) string { return c.AuthMode }},
	{Name: "CONTAINER_REGISTRY_AUTHFILE", Default: "", Class: true, Doc: "Docker-style config.json for authfile mode",
		Parse: func(c *Config, v string) error { c.Authfile = v; return nil }, Bake: func(c *Config) string { return c.Authfile }},
	{Name: "CONTAINER_REGISTRY_CREDSFILE", Default: "", Class: true, Doc: "key=value credentials file for credsfile mode",
		Parse: func(c *Config, v string) error { c.Credsfile = v; return nil }, Bake: func(c *Config) string { return c.Credsfile }},
	{Name: "CONTAINER_REGISTRY_IMAGES", Default: "", Class: true, Doc: "images container-registry-populate pushes (empty: all)",
		Parse: func(c *Config, v string) error { c.Images = strings.Fields(v); return nil }},
	{Name: "CONTAINER_REGISTRY_SEARCH_FIRST", Default: "1", Class: true, Doc: "targets search the local registry before Docker Hub",
		Parse: func(c *Config, v string) (err error) { c.SearchFirst, err = parseBool(v); return err }},
	{Name: varListen, Default: "", Class: true, Doc: "address the registry listens on (empty: loopback when the URL host is loopback and targets reach it there, else all interfaces; :: or 0.0.0.0: all)",
		Parse: parseListen, Bake: func(c *Config) string { return c.Listen() }},
	{Name: "CONTAINER_REGISTRY_UI", Default: "1", Class: true, Doc: "1: serve answers browsers with a registry browser at /ui/ (0: the /v2/ API only)",
		Parse: func(c *Config, v string) (err error) { c.UI, err = parseBool(v); return err }, Bake: func(c *Config) string { return BoolString(c.UI) }},
	{Name: "CONTAINER_REGISTRY_ALLOWED_HOSTS", Default: "", Class: true, Doc: "more host names serve answers requests for, space-separated, beyond the URL's, the target's, loopback, the listen addresses, the certificate's names and this host's name (IP addresses always pass; *: every name, no check)",
		Parse: parseAllowedHosts, Bake: func(c *Config) string { return strings.Join(c.AllowedHosts, " ") }},
	{Name: "CONTAINER_REGISTRY_GC_INTERVAL", Default: "", Class: true, Doc: "serve collects garbage itself this often, online, one replica at a time, pruning first with the retention policy (a duration such as 24h or 30m, at least 1m; empty or 0: never)",
		Parse: parseGCInterval, Bake: func(c *Config) string { return durationString(c.GCInterval) }},
	{Name: "CONTAINER_REGISTRY_TARGET_URL", Default: "", Class: true, Doc: "host:port targets use (default: URL with localhost as 10.0.2.2); signatures name images by it",
		Parse: parseTargetURL, Bake: func(c *Config) string { return c.raw("CONTAINER_REGISTRY_TARGET_URL") }},
	{Name: "DOCKER_REGISTRY_INSECURE", Default: "", Class: true, Doc: "registries Docker on the target reaches over HTTP",
		Parse: func(c *Config, v string) error {
			c.DockerInsecure = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
			return nil
		}},
	{Name: "DOCKER_OCI_RUNTIMES", Default: "", Class: true, Doc: "JSON object of extra Docker runtimes",
		Parse: func(c *Config, v string) error { c.DockerOCIRuntimes = v; return nil }},
	{Name: "DOCKER_DEFAULT_RUNTIME", Default: "", Class: true, Doc: "Docker's default runtime",
		Parse: func(c *Config, v string) error { c.DockerDefaultRuntime = v; return nil }},
	{Name: "PODMAN_OCI_RUNTIME", Default: "", Class: true, Doc: "Podman's runtime",
		Parse: func(c *Config, v string) error { c.PodmanRuntime = v; return nil }},
	{Name: "PODMAN_OCI_RUNTIME_PATH", Default: "", Class: true, Doc: "path of Podman's runtime (default: /usr/bin/<runtime>)",
		Parse: func(c *Config, v string) error {
			c.PodmanRuntimePath = v
			if v == "" && c.PodmanRuntime != "" {
				c.PodmanRuntimePath = "/usr/bin/" + c.PodmanRuntime
			}
			return nil
		}},
	{Name: "OCI_IMAGE_AUTO_LABELS", Default: "1", Class: true, Doc: "0: no build-time OCI labels",
		Parse: func(c *Config, v string) (err error) {
			c.Labels.Auto = true
			if v != "" {
				c.Labels.Auto, err = parseBool(v)
			}
			return err
		}},
	{Name: "OCI_IMAGE_REVISION", Default: "", Class: true, Doc: "revision label (none: drop it; empty: git HEAD of TOPDIR)",
		Parse: func(c *Config, v string) error { c.Labels.Revision = v; return nil }},
	{Name: "OCI_IMAGE_BRANCH", Default: "", Class: true, Doc: "ref.name label (none: drop it; empty: git branch of TOPDIR)",
		Parse: func(c *Config, v string) error { c.Labels.Branch = v; return nil }},
	{Name: "OCI_IMAGE_BUILD_DATE", Default: "", Class: true, Doc: "created label (RFC 3339 or YYYYmmddHHMMSS; none: drop it)",
		Parse: parseBuildDate},
	{Name: "DEPLOY_DIR", Doc: "bitbake deploy directory (DEPLOY_DIR_IMAGES defaults to its images/)"},
	{Name: "DEPLOY_DIR_IMAGES", Doc: "root of the machine deploy directories push searches",
		Parse: parseDeployImages, Bake: func(c *Config) string { return c.DeployDirImages }},
	{Name: "DEPLOY_DIR_IMAGE", Doc: "one machine's deploy directory (legacy)",
		Parse: func(c *Config, v string) error { return absPath(&c.DeployDirImage, v) }, Bake: func(c *Config) string { return c.DeployDirImage }},
	{Name: "MACHINE", Doc: "bitbake MACHINE", Parse: func(c *Config, v string) error { c.Machine = v; return nil }},
	{Name: "TARGET_ARCH", Doc: "architecture of images without one in their config",
		Parse: func(c *Config, v string) error { c.TargetArch = v; return nil }, Bake: func(c *Config) string { return c.TargetArch }},
	{Name: "PV", Doc: "recipe version (semver/version strategies, version label)",
		Parse: func(c *Config, v string) error { c.PV = v; return nil }},
	{Name: "IMAGE_VERSION", Doc: "version for semver/version strategies (over PV)",
		Parse: func(c *Config, v string) error { c.ImageVersion = v; return nil }},
	{Name: "CONTAINER_REGISTRY_TOOL", Doc: "the tool in the native sysroot (the helper's fallback)",
		Parse: func(c *Config, v string) error { c.NativeTool = v; return nil }},
}

// defaults maps every setting to its default (built once: Settings'
// parsers read values through it).
var defaults = map[string]string{}

func init() {
	for _, s := range Settings {
		defaults[s.Name] = s.Default
	}
}

// Lookup returns the setting called name.
func Lookup(name string) (Setting, bool) {
	i := slices.IndexFunc(Settings, func(s Setting) bool { return s.Name == name })
	if i < 0 {
		return Setting{}, false
	}
	return Settings[i], true
}

// ClassDefaults returns the defaults of the settings the bitbake class
// declares, by name.
func ClassDefaults() map[string]string {
	out := map[string]string{}
	for _, s := range Settings {
		if s.Class {
			out[s.Name] = s.Default
		}
	}
	return out
}

func parseURL(c *Config, v string) (err error) {
	c.URL = v
	c.Host, c.Port, err = splitHostPort(v)
	return err
}

func parseNamespace(c *Config, v string) error {
	if err := imageref.ValidateRepository(v); err != nil {
		return fmt.Errorf("%q is not a valid repository namespace: %w", v, err)
	}
	c.Namespace = v
	return nil
}

func parseStorage(c *Config, v string) error {
	if c.TopDir != "" {
		v = strings.ReplaceAll(v, "${TOPDIR}", c.TopDir)
	}
	switch {
	case strings.Contains(v, "${"):
		return fmt.Errorf("%q still holds an unexpanded variable (set TOPDIR or an absolute path)", v)
	case v == "":
		return fmt.Errorf("empty")
	}
	return absPath(&c.Storage, v)
}

func parseUsername(c *Config, v string) error {
	if v == "" || strings.ContainsAny(v, ": \t\n") {
		return fmt.Errorf("%q is not a valid user name (non-empty, no ':' or spaces)", v)
	}
	c.Username = v
	return nil
}

func parsePassword(c *Config, v string) error {
	if err := CheckPassword(v); err != nil {
		return err
	}
	c.Password = v
	return nil
}

func parseAuthMode(c *Config, v string) error {
	if !slices.Contains(AuthModes, v) {
		return fmt.Errorf("unknown mode %q (valid: %s)", v, strings.Join(AuthModes, ", "))
	}
	c.AuthMode = v
	return nil
}

func parseTargetURL(c *Config, v string) error {
	if v == "" {
		c.TargetURL = TargetAddress(c.Host, c.Port)
		return nil
	}
	if _, _, err := splitHostPort(v); err != nil {
		return err
	}
	c.TargetURL = v
	return nil
}

// parseListen checks CONTAINER_REGISTRY_LISTEN: empty, or an IP address
// of this host (the registry reads it through Listen).
func parseListen(c *Config, v string) error {
	if v == "" {
		return nil
	}
	if net.ParseIP(strings.Trim(v, "[]")) == nil {
		return fmt.Errorf("%q is not an IP address (127.0.0.1: this host only; :: or 0.0.0.0: all interfaces; empty: chosen from CONTAINER_REGISTRY_URL)", v)
	}
	return nil
}

// parseAllowedHosts reads CONTAINER_REGISTRY_ALLOWED_HOSTS: host names
// (a port is not part of one), or * alone.
func parseAllowedHosts(c *Config, v string) error {
	c.AllowedHosts = strings.Fields(v)
	for _, h := range c.AllowedHosts {
		if h == "*" {
			if len(c.AllowedHosts) > 1 {
				return fmt.Errorf("* allows every host name: list it alone")
			}
			continue
		}
		if strings.ContainsAny(h, ":/@[]") || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
			return fmt.Errorf("%q is not a host name (names only, without port; * for any)", h)
		}
	}
	return nil
}

// parseGCInterval reads CONTAINER_REGISTRY_GC_INTERVAL.
func parseGCInterval(c *Config, v string) error {
	if v == "" || v == "0" {
		c.GCInterval = 0
		return nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a duration (such as 24h, 90m; empty or 0: never)", v)
	case d < time.Minute:
		return fmt.Errorf("%s is shorter than a minute: a collection walks the whole storage", v)
	}
	c.GCInterval = d
	return nil
}

// durationString is d as a setting's value: "" for 0.
func durationString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// maxRetention bounds the retention counts: beyond it a value is a typo
// (a million builds, or days, keeps everything anyway).
const maxRetention = 1_000_000

// parseRetentionCount reads CONTAINER_REGISTRY_RETENTION_KEEP or _DAYS: a
// whole number of unit, empty or 0 for none.
func parseRetentionCount(v, unit, none string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxRetention {
		return 0, fmt.Errorf("%q is not a whole number of %s from 0 to %d (empty or 0: %s)", v, unit, maxRetention, none)
	}
	return n, nil
}

// parseProtect reads CONTAINER_REGISTRY_RETENTION_PROTECT: tag patterns
// in path.Match syntax (*, ?, [...]), checked here so that prune never
// meets a bad one.
func parseProtect(c *Config, v string) error {
	c.Retention.Protect = strings.Fields(v)
	for _, p := range c.Retention.Protect {
		if err := CheckTagPattern(p); err != nil {
			return err
		}
	}
	return nil
}

// CheckTagPattern checks one protect pattern (the setting's and
// prune --protect's): path.Match syntax, at most 256 bytes, no '/'.
func CheckTagPattern(p string) error {
	if len(p) > 256 || strings.Contains(p, "/") {
		return fmt.Errorf("%q is not a tag pattern (a shell glob of tag characters, *, ? and [...], up to 256 bytes)", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a tag pattern: %w", p, err)
	}
	return nil
}

// Listen is the address CONTAINER_REGISTRY_LISTEN names, without brackets;
// empty when the registry chooses (see regconfig.ListenAddrs).
func (c *Config) Listen() string { return strings.Trim(c.raw(varListen), "[]") }

func parseDeployImages(c *Config, v string) error {
	if v == "" {
		if d := c.raw("DEPLOY_DIR"); d != "" {
			v = filepath.Join(d, "images")
		}
	}
	return absPath(&c.DeployDirImages, v)
}

// CheckPassword is the one rule for a password, wherever it comes from
// (the environment, the password file): one line, no white space at either
// end (a file or a shell would lose it), no NUL.
func CheckPassword(v string) error {
	switch {
	case strings.ContainsAny(v, "\n\r\x00"):
		return fmt.Errorf("must be a single line")
	case v != strings.TrimSpace(v):
		return fmt.Errorf("must not start or end with white space")
	}
	return nil
}

func absPath(dst *string, v string) error {
	if v == "" {
		*dst = ""
		return nil
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%q is not valid UTF-8 (the registry configuration cannot name such a path)", v)
	}
	p, err := filepath.Abs(v)
	if err != nil {
		return err
	}
	*dst = p
	return nil
}
