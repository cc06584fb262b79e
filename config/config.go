// Package config owns the tool's configuration: the table of settings
// (name, default, parser, doc), the env-dump reader and writer, and the
// precedence of the levels a value can come from — command-line flag over
// process environment over the env dump (or the values baked into the
// helper script) over the built-in defaults. Load remembers the level of
// every value; the security mode is decided from those levels (see
// resolveMode). Nothing else in the tool parses a variable.
package config

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocireg-tool/ocireg-tool/internal/redact"
)

// Level is where a value came from. Higher levels win.
type Level int

// The levels, lowest first.
const (
	LevelDefault Level = iota // built-in default (the class's)
	LevelDump                 // env dump, or the values baked into the helper
	LevelEnv                  // process environment
	LevelFlag                 // command-line flag
)

// BakedVar is the environment variable through which the generated helper
// script hands its baked values to the tool, in env-dump format. They form
// the dump level: a variable set in the environment wins over them.
const BakedVar = "CONTAINER_REGISTRY_BAKED"

// Value is one setting's effective raw value and where it came from.
type Value struct {
	Raw   string
	Level Level
	// From names the source for messages: "the environment", "the helper
	// script", "the env dump <file>", "a flag" or "the default".
	From string
}

// Config is the validated configuration every command works from.
type Config struct {
	URL       string // host:port the build host uses
	Host      string // host part of URL
	Port      string // port part of URL
	Namespace string
	Insecure  bool
	Secure    bool
	// Auth is true when the local registry requires htpasswd credentials:
	// secure mode unless CONTAINER_REGISTRY_AUTH=0.
	Auth        bool
	TagStrategy []string
	// Attach are the kinds of build documents push attaches (AttachKinds);
	// empty: none.
	Attach   []string
	Storage  string
	Username string
	Password string // never baked into generated files
	CertDays int
	CADays   int
	CertSANs []SAN

	AuthMode  string
	Authfile  string
	Credsfile string

	Images      []string // CONTAINER_REGISTRY_IMAGES filter for populate
	SearchFirst bool
	TargetURL   string // host:port targets use
	UI          bool   // serve the registry browser
	// GCInterval is how often serve collects garbage itself (0: never).
	GCInterval time.Duration
	// AllowedHosts are host names serve answers for beyond the ones it
	// knows (CONTAINER_REGISTRY_ALLOWED_HOSTS); "*" alone: any.
	AllowedHosts []string

	DockerInsecure       []string
	DockerOCIRuntimes    string // raw JSON object
	DockerDefaultRuntime string
	PodmanRuntime        string
	PodmanRuntimePath    string

	Labels LabelSettings

	// Retention is the retention policy of prune
	// (CONTAINER_REGISTRY_RETENTION_*).
	Retention Retention

	// Sign is true when push signs every manifest it writes
	// (CONTAINER_REGISTRY_SIGN); SigningKey is an existing cosign private
	// key (empty: the generated SigningKeyFile) and SigningPasswordFile the
	// file of its passphrase (empty: COSIGN_PASSWORD from the environment).
	Sign                bool
	SigningKey          string
	SigningPasswordFile string

	// Backend is the shared object storage (zero: the local filesystem);
	// Redis the shared cache; BackendCredentials the file of their
	// secrets (never baked).
	Backend            Backend
	Redis              Redis
	BackendCredentials string

	TopDir          string
	DeployDirImages string
	DeployDirImage  string
	Machine         string
	TargetArch      string
	PV              string
	ImageVersion    string

	// NativeTool is the path of the tool in the native sysroot, baked into
	// the helper script as its fallback.
	NativeTool string

	// Warnings collects findings the user should act on; Notes explain a
	// decision (which mode won and why). Both are for display.
	Warnings []string
	Notes    []string

	values map[string]Value
}

// Retention are the CONTAINER_REGISTRY_RETENTION_* settings: which builds
// prune keeps (package tasks/retention applies them).
type Retention struct {
	Keep    int      // newest builds kept per image; 0: no count limit
	Days    int      // builds younger than Days days kept; 0: no age limit
	Protect []string // tag patterns always kept, with their builds
	OnPush  bool     // push prunes the images it pushed
}

// LabelSettings are the OCI_IMAGE_* settings of the build-time labels.
type LabelSettings struct {
	Auto     bool
	Revision string // "" : from git; "none": no label
	Branch   string // "" : from git; "none": no label
	// Created is OCI_IMAGE_BUILD_DATE; zero: the time of the run.
	// NoCreated is true for "none".
	Created   time.Time
	NoCreated bool
}

// LabelSettingNames are the settings the build-time labels read.
var LabelSettingNames = []string{"TOPDIR", "PV", "OCI_IMAGE_AUTO_LABELS", "OCI_IMAGE_REVISION", "OCI_IMAGE_BRANCH", "OCI_IMAGE_BUILD_DATE"}

// SAN is one subjectAltName entry of the server certificate.
type SAN struct {
	DNS string
	IP  net.IP
}

func (s SAN) String() string {
	if s.IP != nil {
		return "IP:" + s.IP.String()
	}
	return "DNS:" + s.DNS
}

// Sources are the inputs of Load besides the defaults, lowest level first.
type Sources struct {
	// Dump is an env dump file ("": none): the class's dump or the output
	// of `bitbake -e`.
	Dump string
	// Environ is the process environment (KEY=value). The helper's baked
	// values (BakedVar) in it join the dump level.
	Environ []string
	// Flags are variables set by command-line flags.
	Flags Vars
	// Only restricts parsing and validation to these settings (labels
	// needs a handful and must not fail on, say, an unexpanded storage
	// path). Empty: every setting, and the security mode.
	Only []string
}

// Load resolves the configuration from src and validates it.
func Load(src Sources) (*Config, error) {
	values := map[string]Value{}
	set := func(vars Vars, level Level, from string) {
		for k, v := range vars {
			values[k] = Value{Raw: v, Level: level, From: from}
		}
	}
	if src.Dump != "" {
		d, err := ReadDump(src.Dump)
		if err != nil {
			return nil, err
		}
		set(d, LevelDump, "the env dump "+src.Dump)
	}
	env := FromEnviron(src.Environ)
	if baked, ok := env[BakedVar]; ok {
		d, err := ParseDump(strings.NewReader(baked), BakedVar)
		if err != nil {
			return nil, fmt.Errorf("the helper script's baked values: %w (regenerate it: bitbake container-registry-index -c generate_registry_script)", err)
		}
		set(d, LevelDump, "the helper script")
		delete(env, BakedVar)
	}
	set(env, LevelEnv, "the environment")
	set(src.Flags, LevelFlag, "the command line")
	return resolve(values, src.Only)
}

// FromVars builds a Config from variables at the dump level, as `generate`
// sees a bitbake env dump. Tests and callers with a ready map use it.
func FromVars(vars Vars) (*Config, error) {
	values := make(map[string]Value, len(vars))
	for k, v := range vars {
		values[k] = Value{Raw: v, Level: LevelDump, From: "the env dump"}
	}
	return resolve(values, nil)
}

// resolve parses every setting of the table (or those in only) from its
// effective value.
func resolve(values map[string]Value, only []string) (*Config, error) {
	c := &Config{values: values}
	for _, s := range Settings {
		if s.Parse == nil || (len(only) > 0 && !slices.Contains(only, s.Name)) {
			continue
		}
		if err := s.Parse(c, c.raw(s.Name)); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	if len(only) > 0 {
		return c, nil
	}
	if err := c.resolveMode(); err != nil {
		return nil, err
	}
	switch {
	case c.AuthMode == "authfile" && c.Authfile == "":
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTH_MODE=authfile needs CONTAINER_REGISTRY_AUTHFILE")
	case c.AuthMode == "credsfile" && c.Credsfile == "":
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTH_MODE=credsfile needs CONTAINER_REGISTRY_CREDSFILE")
	}
	return c, nil
}

// Get returns the effective value of name and its origin, without
// surrounding white space except for secrets (a password is taken as it
// is). A variable that is set nowhere has its default at LevelDefault.
func (c *Config) Get(name string) Value {
	if v, ok := c.values[name]; ok {
		if name != varPassword {
			v.Raw = strings.TrimSpace(v.Raw)
		}
		return v
	}
	return Value{Raw: defaults[name], Level: LevelDefault, From: "the default"}
}

// raw is the effective value of name without its origin.
// (Paths must be valid UTF-8: the registry's YAML cannot carry other bytes.)
func (c *Config) raw(name string) string { return c.Get(name).Raw }

// resolveMode decides the security mode from CONTAINER_REGISTRY_SECURE,
// _INSECURE and _AUTH and the level each came from. Within one level the
// rules are those of meta-virtualization's container-registry.sh: AUTH=1 implies SECURE (with a warning), SECURE=1 and
// INSECURE=1 contradict. Across levels the higher one wins, so
// `CONTAINER_REGISTRY_SECURE=1 ./container-registry.sh start` works with a
// helper baked with CONTAINER_REGISTRY_INSECURE=1; a Note says which won.
func (c *Config) resolveMode() error {
	sec, insec, auth := c.Get(varSecure), c.Get(varInsecure), c.Get(varAuth)
	secureOn, err := parseBool(sec.Raw)
	if err != nil {
		return fmt.Errorf("%s: %w", varSecure, err)
	}
	insecureOn, err := parseBool(insec.Raw)
	if err != nil {
		return fmt.Errorf("%s: %w", varInsecure, err)
	}
	authOn := false
	if auth.Raw != "" {
		if authOn, err = parseBool(auth.Raw); err != nil {
			return fmt.Errorf("%s: %w", varAuth, err)
		}
	}
	secureLevel, secureWhy := sec.Level, fmt.Sprintf("%s=1 from %s", varSecure, sec.From)
	// AUTH=1 asks for TLS unless a higher level said SECURE=0.
	if authOn && !secureOn && auth.Level >= sec.Level {
		if !insecureOn || insec.Level <= auth.Level {
			c.Warnings = append(c.Warnings, "CONTAINER_REGISTRY_AUTH=1 requires TLS; enabling CONTAINER_REGISTRY_SECURE")
		}
		secureOn, secureLevel, secureWhy = true, auth.Level, fmt.Sprintf("%s=1 from %s", varAuth, auth.From)
	}
	if secureOn && insecureOn {
		insecureWhy := fmt.Sprintf("%s=1 from %s", varInsecure, insec.From)
		switch {
		case secureLevel == insec.Level:
			return fmt.Errorf("%s and %s contradict each other; set only one", secureWhy, insecureWhy)
		case secureLevel > insec.Level:
			insecureOn = false
			c.Notes = append(c.Notes, fmt.Sprintf("secure mode: %s overrides %s", secureWhy, insecureWhy))
		default:
			secureOn = false
			c.Notes = append(c.Notes, fmt.Sprintf("insecure mode: %s overrides %s", insecureWhy, secureWhy))
		}
	}
	c.Secure, c.Insecure = secureOn, insecureOn
	switch {
	case !c.Secure:
		c.Auth = false
	case auth.Raw == "":
		c.Auth = true
	default:
		c.Auth = authOn
	}
	return nil
}

// Mode describes the registry's security mode for humans.
func (c *Config) Mode() string {
	switch {
	case c.Secure && c.Auth:
		return "secure (TLS + auth)"
	case c.Secure:
		return "secure (TLS only)"
	default:
		return "insecure (HTTP)"
	}
}

// Scheme is the one rule for how the local registry is spoken to: "https"
// in secure mode, else "http" — whatever the host name. Every command
// reaches the registry with it (tasks/registry builds on it).
func (c *Config) Scheme() string {
	if c.Secure {
		return "https"
	}
	return "http"
}

// BaseURL is the local registry's URL with its scheme.
func (c *Config) BaseURL() string { return c.Scheme() + "://" + c.URL }

// UIPath is where serve answers browsers (its registry browser).
const UIPath = "/ui/"

// UIURL is the address of the registry browser, or "" when
// CONTAINER_REGISTRY_UI=0.
func (c *Config) UIURL() string {
	if !c.UI {
		return ""
	}
	return c.BaseURL() + UIPath
}

// PKIDir, AuthDir and friends name the files under the storage directory.
func (c *Config) PKIDir() string     { return filepath.Join(c.Storage, "pki") }
func (c *Config) CACert() string     { return filepath.Join(c.PKIDir(), "ca.crt") }
func (c *Config) CAKey() string      { return filepath.Join(c.PKIDir(), "ca.key") }
func (c *Config) ServerCert() string { return filepath.Join(c.PKIDir(), "server.crt") }
func (c *Config) ServerKey() string  { return filepath.Join(c.PKIDir(), "server.key") }

// SigningKeyFile, SigningPassFile and SigningPubFile are the generated
// signing key, its passphrase and the public key of the key in use.
func (c *Config) SigningKeyFile() string  { return filepath.Join(c.PKIDir(), "signing.key") }
func (c *Config) SigningPassFile() string { return filepath.Join(c.PKIDir(), "signing.pass") }
func (c *Config) SigningPubFile() string  { return filepath.Join(c.PKIDir(), "signing.pub") }
func (c *Config) AuthDir() string         { return filepath.Join(c.Storage, "auth") }
func (c *Config) HtpasswdFile() string    { return filepath.Join(c.AuthDir(), "htpasswd") }
func (c *Config) PasswordFile() string    { return filepath.Join(c.AuthDir(), "password") }
func (c *Config) RegistryConfig() string {
	return filepath.Join(c.Storage, "registry-config.yml")
}
func (c *Config) Script() string     { return filepath.Join(c.Storage, "container-registry.sh") }
func (c *Config) ToolCopy() string   { return filepath.Join(c.Storage, "bin", "ocireg-tool") }
func (c *Config) DataDir() string    { return filepath.Join(c.Storage, "data") }
func (c *Config) SecretFile() string { return filepath.Join(c.Storage, "http.secret") }

// DeployDirs lists the roots push searches for machine directories.
func (c *Config) DeployDirs() []string {
	var out []string
	for _, d := range []string{c.DeployDirImages, c.DeployDirImage} {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// BakedVars is the set of variables the helper script carries as defaults,
// sorted by name. Secrets are never among them.
func (c *Config) BakedVars() Vars {
	out := Vars{}
	for _, s := range Settings {
		if s.Bake != nil {
			out[s.Name] = s.Bake(c)
		}
	}
	return out
}

var (
	strategyRe = regexp.MustCompile(`^[a-z]+$`)
	hostRe     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// ParseStrategy splits and checks a tag strategy.
func ParseStrategy(s string) ([]string, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return nil, fmt.Errorf("empty tag strategy (valid: %s)", strings.Join(Strategies, ", "))
	}
	for _, w := range words {
		if !strategyRe.MatchString(w) {
			return nil, fmt.Errorf("%q has invalid characters (valid strategies: %s)", w, strings.Join(Strategies, ", "))
		}
		if !slices.Contains(Strategies, w) {
			return nil, fmt.Errorf("unknown strategy %q (valid: %s)", w, strings.Join(Strategies, ", "))
		}
	}
	return words, nil
}

// ParseAttach parses CONTAINER_REGISTRY_ATTACH: words of AttachKinds, or
// "none" alone (an empty list).
func ParseAttach(s string) ([]string, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return nil, fmt.Errorf("empty (valid: %s, or none)", strings.Join(AttachKinds, " "))
	}
	if len(words) == 1 && words[0] == "none" {
		return []string{}, nil
	}
	var out []string
	for _, w := range words {
		if !slices.Contains(AttachKinds, w) {
			return nil, fmt.Errorf("unknown kind %q (valid: %s, or none alone)", w, strings.Join(AttachKinds, " "))
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out, nil
}

// AttachDefault is the default kinds of CONTAINER_REGISTRY_ATTACH (what
// --attach turns on when the setting says none).
func AttachDefault() []string {
	s, _ := Lookup("CONTAINER_REGISTRY_ATTACH")
	kinds, _ := ParseAttach(s.Default)
	return kinds
}

// AttachString spells kinds as CONTAINER_REGISTRY_ATTACH does ("none"
// when empty).
func AttachString(kinds []string) string {
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, " ")
}

// ParseSANs parses "DNS:name,IP:addr" entries (comma or space separated).
func ParseSANs(s string) ([]SAN, error) {
	var out []SAN
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		kind, val, ok := strings.Cut(e, ":")
		switch {
		case !ok || val == "":
			return nil, fmt.Errorf("entry %q: want DNS:<name> or IP:<address>", e)
		case strings.EqualFold(kind, "DNS"):
			if !hostRe.MatchString(strings.TrimPrefix(val, "*.")) {
				return nil, fmt.Errorf("entry %q: %q is not a valid DNS name", e, val)
			}
			out = append(out, SAN{DNS: strings.ToLower(val)})
		case strings.EqualFold(kind, "IP"):
			ip := net.ParseIP(val)
			if ip == nil {
				return nil, fmt.Errorf("entry %q: %q is not a valid IP address", e, val)
			}
			out = append(out, SAN{IP: ip})
		default:
			return nil, fmt.Errorf("entry %q: unknown type %q (want DNS or IP)", e, kind)
		}
	}
	return out, nil
}

// RequiredSANs is every name the server certificate must cover: localhost,
// the URL host, 127.0.0.1, 10.0.2.2 and the configured extra entries, in a
// stable order without duplicates.
func (c *Config) RequiredSANs() (dns []string, ips []net.IP) {
	seenDNS := map[string]bool{}
	seenIP := map[string]bool{}
	add := func(s SAN) {
		if s.IP != nil {
			if !seenIP[s.IP.String()] {
				seenIP[s.IP.String()] = true
				ips = append(ips, s.IP)
			}
			return
		}
		if !seenDNS[s.DNS] {
			seenDNS[s.DNS] = true
			dns = append(dns, s.DNS)
		}
	}
	add(SAN{DNS: "localhost"})
	if ip := net.ParseIP(c.Host); ip != nil {
		add(SAN{IP: ip})
	} else {
		add(SAN{DNS: strings.ToLower(c.Host)})
	}
	add(SAN{IP: net.ParseIP("127.0.0.1")})
	add(SAN{IP: net.ParseIP("10.0.2.2")})
	for _, s := range c.CertSANs {
		add(s)
	}
	return dns, ips
}

// TargetAddress translates a host-side address to the one a QEMU target
// uses: a loopback host (IsLoopbackHost) becomes the slirp gateway
// 10.0.2.2.
func TargetAddress(host, port string) string {
	if IsLoopbackHost(host) {
		host = "10.0.2.2"
	}
	return net.JoinHostPort(host, port)
}

// LoopbackAddrs are this host's loopback addresses as the tool spells
// them: where a registry serving only this host listens (QEMU user
// networking reaches the host's 127.0.0.1 at 10.0.2.2; clients resolving
// localhost may try ::1 first), and what localhost stands for.
func LoopbackAddrs() []string { return []string{"127.0.0.1", "::1"} }

// IsLoopbackHost reports whether host (a URL's host, IPv6 in brackets or
// not) is this host's loopback: localhost or one of LoopbackAddrs.
func IsLoopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && slices.ContainsFunc(LoopbackAddrs(), func(a string) bool { return ip.Equal(net.ParseIP(a)) })
}

// ValidateRuntimes checks DOCKER_OCI_RUNTIMES and decodes it.
func (c *Config) ValidateRuntimes() (map[string]any, error) {
	if c.DockerOCIRuntimes == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(c.DockerOCIRuntimes), &m); err != nil {
		return nil, fmt.Errorf("DOCKER_OCI_RUNTIMES: invalid JSON object: %w", err)
	}
	for name, v := range m {
		if _, ok := v.(map[string]any); !ok {
			return nil, fmt.Errorf("DOCKER_OCI_RUNTIMES: runtime %q must be a JSON object like {\"path\": \"/usr/bin/%s\"}", name, name)
		}
	}
	return m, nil
}

// BoolString spells b as the tool's settings do: "1" or "0".
func BoolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func splitHostPort(url string) (string, string, error) {
	shown := redact.URL(url)
	if strings.Contains(url, "://") {
		return "", "", fmt.Errorf("%q must be host:port without a scheme", shown)
	}
	host, port, err := net.SplitHostPort(url)
	if err != nil {
		return "", "", fmt.Errorf("%q must be host:port (e.g. localhost:5000)", shown)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q has an invalid port %q", shown, port)
	}
	if net.ParseIP(host) == nil && !hostRe.MatchString(host) {
		return "", "", fmt.Errorf("%q has an invalid host %q", shown, redact.URL(host))
	}
	return host, port, nil
}

// ParseBool reads a bitbake-style boolean: 1/true/yes/on or 0/false/no/off/"".
func ParseBool(v string) (bool, error) { return parseBool(v) }

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use 1 or 0)", v)
}

func parseDays(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive whole number of days", v)
	}
	return n, nil
}

var bitbakeDateRe = regexp.MustCompile(`^[0-9]{14}$`)

// parseBuildDate accepts RFC 3339, bitbake's DATETIME (UTC) and "none".
func parseBuildDate(c *Config, v string) error {
	switch {
	case v == "none":
		c.Labels.NoCreated = true
		return nil
	case v == "":
		return nil
	case bitbakeDateRe.MatchString(v):
		t, err := time.Parse("20060102150405", v)
		c.Labels.Created = t
		return err
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("%q is neither RFC 3339 (2026-01-12T20:32:24Z) nor YYYYmmddHHMMSS", v)
	}
	c.Labels.Created = t
	return nil
}
