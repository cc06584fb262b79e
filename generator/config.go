package generator

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Defaults shared with meta-layer/classes/container-registry.bbclass. A test
// reads the class and compares.
var Defaults = map[string]string{
	"CONTAINER_REGISTRY_URL":          "localhost:5000",
	"CONTAINER_REGISTRY_NAMESPACE":    "yocto",
	"CONTAINER_REGISTRY_INSECURE":     "0",
	"CONTAINER_REGISTRY_SECURE":       "0",
	"CONTAINER_REGISTRY_AUTH":         "",
	"CONTAINER_REGISTRY_TAG_STRATEGY": "timestamp latest",
	"CONTAINER_REGISTRY_STORAGE":      "${TOPDIR}/container-registry",
	"CONTAINER_REGISTRY_USERNAME":     "yocto",
	"CONTAINER_REGISTRY_CERT_DAYS":    "365",
	"CONTAINER_REGISTRY_CA_DAYS":      "3650",
	"CONTAINER_REGISTRY_CERT_SAN":     "",
	"CONTAINER_REGISTRY_AUTH_MODE":    "none",
	"CONTAINER_REGISTRY_AUTHFILE":     "",
	"CONTAINER_REGISTRY_CREDSFILE":    "",
	"CONTAINER_REGISTRY_IMAGES":       "",
	"CONTAINER_REGISTRY_SEARCH_FIRST": "1",
	"CONTAINER_REGISTRY_TARGET_URL":   "",
	"DOCKER_REGISTRY_INSECURE":        "",
	"DOCKER_OCI_RUNTIMES":             "",
	"DOCKER_DEFAULT_RUNTIME":          "",
	"PODMAN_OCI_RUNTIME":              "",
	"PODMAN_OCI_RUNTIME_PATH":         "",
	"OCI_IMAGE_AUTO_LABELS":           "1",
	"OCI_IMAGE_REVISION":              "",
	"OCI_IMAGE_BRANCH":                "",
	"OCI_IMAGE_BUILD_DATE":            "",
}

// AuthModes are the valid values of CONTAINER_REGISTRY_AUTH_MODE.
var AuthModes = []string{"none", "home", "authfile", "credsfile", "env"}

// Strategies are the valid words of CONTAINER_REGISTRY_TAG_STRATEGY.
var Strategies = []string{"timestamp", "sha", "git", "branch", "semver", "version", "latest", "arch"}

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
	Storage     string
	Username    string
	Password    string // never baked into generated files
	CertDays    int
	CADays      int
	CertSANs    []SAN

	AuthMode  string
	Authfile  string
	Credsfile string

	Images      []string // CONTAINER_REGISTRY_IMAGES filter for populate
	SearchFirst bool
	TargetURL   string // host:port targets use

	DockerInsecure       []string
	DockerOCIRuntimes    string // raw JSON object
	DockerDefaultRuntime string
	PodmanRuntime        string
	PodmanRuntimePath    string

	TopDir          string
	DeployDir       string
	DeployDirImages string
	DeployDirImage  string
	Machine         string
	TargetArch      string
	PV              string
	ImageVersion    string

	// NativeTool is the path of the tool in the native sysroot, baked into
	// the helper script as its fallback.
	NativeTool string

	// Warnings collects non-fatal findings made while loading.
	Warnings []string
	// Vars keeps the merged variables for callers that need more.
	Vars Vars
}

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

// Scheme is "https" in secure mode, else "http".
func (c *Config) Scheme() string {
	if c.Secure {
		return "https"
	}
	return "http"
}

// PKIDir, AuthDir and friends name the files under the storage directory.
func (c *Config) PKIDir() string       { return filepath.Join(c.Storage, "pki") }
func (c *Config) CACert() string       { return filepath.Join(c.PKIDir(), "ca.crt") }
func (c *Config) CAKey() string        { return filepath.Join(c.PKIDir(), "ca.key") }
func (c *Config) ServerCert() string   { return filepath.Join(c.PKIDir(), "server.crt") }
func (c *Config) ServerKey() string    { return filepath.Join(c.PKIDir(), "server.key") }
func (c *Config) AuthDir() string      { return filepath.Join(c.Storage, "auth") }
func (c *Config) HtpasswdFile() string { return filepath.Join(c.AuthDir(), "htpasswd") }
func (c *Config) PasswordFile() string { return filepath.Join(c.AuthDir(), "password") }
func (c *Config) RegistryConfig() string {
	return filepath.Join(c.Storage, "registry-config.yml")
}
func (c *Config) Script() string     { return filepath.Join(c.Storage, "container-registry.sh") }
func (c *Config) ToolCopy() string   { return filepath.Join(c.Storage, "bin", "ocireg-tool") }
func (c *Config) DataDir() string    { return filepath.Join(c.Storage, "data") }
func (c *Config) SecretFile() string { return filepath.Join(c.Storage, "http.secret") }

// DeployDirs lists the directories push searches: every machine directory
// under DEPLOY_DIR_IMAGES is found by the caller; this returns the roots.
func (c *Config) DeployDirs() []string {
	var out []string
	if c.DeployDirImages != "" {
		out = append(out, c.DeployDirImages)
	}
	if c.DeployDirImage != "" {
		out = append(out, c.DeployDirImage)
	}
	return out
}

var (
	namespaceRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	strategyRe  = regexp.MustCompile(`^[a-z]+$`)
	hostRe      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// Load resolves the configuration from an optional env dump, the process
// environment and flag values, in increasing precedence, then validates it.
// dump may be "". flags holds variables set on the command line.
func Load(dump string, environ []string, flags Vars) (*Config, error) {
	vars := Vars{}
	if dump != "" {
		d, err := ReadDump(dump)
		if err != nil {
			return nil, err
		}
		vars = d
	}
	vars = vars.Overlay(FromEnviron(environ)).Overlay(flags)
	return FromVars(vars)
}

// FromVars builds and validates a Config from merged variables.
func FromVars(vars Vars) (*Config, error) {
	get := func(name string) string {
		if v, ok := vars[name]; ok {
			return strings.TrimSpace(v)
		}
		return Defaults[name]
	}
	c := &Config{Vars: vars}
	var err error

	c.URL = get("CONTAINER_REGISTRY_URL")
	if c.Host, c.Port, err = splitHostPort("CONTAINER_REGISTRY_URL", c.URL); err != nil {
		return nil, err
	}
	c.Namespace = get("CONTAINER_REGISTRY_NAMESPACE")
	if !namespaceRe.MatchString(c.Namespace) {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_NAMESPACE: %q is not a valid repository namespace (lowercase letters, digits, '.', '_', '-', '/')", c.Namespace)
	}
	if c.Insecure, err = parseBool("CONTAINER_REGISTRY_INSECURE", get("CONTAINER_REGISTRY_INSECURE")); err != nil {
		return nil, err
	}
	if c.Secure, err = parseBool("CONTAINER_REGISTRY_SECURE", get("CONTAINER_REGISTRY_SECURE")); err != nil {
		return nil, err
	}
	auth := get("CONTAINER_REGISTRY_AUTH")
	switch {
	case auth == "":
		c.Auth = c.Secure
	default:
		on, err := parseBool("CONTAINER_REGISTRY_AUTH", auth)
		if err != nil {
			return nil, err
		}
		if on && !c.Secure {
			c.Warnings = append(c.Warnings, "CONTAINER_REGISTRY_AUTH=1 requires TLS; enabling CONTAINER_REGISTRY_SECURE")
			c.Secure = true
		}
		c.Auth = on
	}
	if c.Secure && c.Insecure {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_SECURE=1 and CONTAINER_REGISTRY_INSECURE=1 contradict each other; set only one")
	}
	if c.TagStrategy, err = ParseStrategy(get("CONTAINER_REGISTRY_TAG_STRATEGY")); err != nil {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_TAG_STRATEGY: %w", err)
	}

	c.TopDir = get("TOPDIR")
	c.Storage = expandTopdir(get("CONTAINER_REGISTRY_STORAGE"), c.TopDir)
	if strings.Contains(c.Storage, "${") {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_STORAGE: %q still holds an unexpanded variable (set TOPDIR or an absolute path)", c.Storage)
	}
	if c.Storage == "" {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_STORAGE: empty")
	}
	if c.Storage, err = filepath.Abs(c.Storage); err != nil {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_STORAGE: %w", err)
	}

	c.Username = get("CONTAINER_REGISTRY_USERNAME")
	if c.Username == "" || strings.ContainsAny(c.Username, ": \t\n") {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_USERNAME: %q is not a valid user name (non-empty, no ':' or spaces)", c.Username)
	}
	c.Password = vars["CONTAINER_REGISTRY_PASSWORD"]
	if strings.ContainsAny(c.Password, "\n\r") {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_PASSWORD: must be a single line")
	}
	if c.CertDays, err = parseDays("CONTAINER_REGISTRY_CERT_DAYS", get("CONTAINER_REGISTRY_CERT_DAYS")); err != nil {
		return nil, err
	}
	if c.CADays, err = parseDays("CONTAINER_REGISTRY_CA_DAYS", get("CONTAINER_REGISTRY_CA_DAYS")); err != nil {
		return nil, err
	}
	if c.CertSANs, err = ParseSANs(get("CONTAINER_REGISTRY_CERT_SAN")); err != nil {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_CERT_SAN: %w", err)
	}

	c.AuthMode = get("CONTAINER_REGISTRY_AUTH_MODE")
	if !slices.Contains(AuthModes, c.AuthMode) {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTH_MODE: unknown mode %q (valid: %s)", c.AuthMode, strings.Join(AuthModes, ", "))
	}
	c.Authfile = get("CONTAINER_REGISTRY_AUTHFILE")
	c.Credsfile = get("CONTAINER_REGISTRY_CREDSFILE")
	if c.AuthMode == "authfile" && c.Authfile == "" {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTH_MODE=authfile needs CONTAINER_REGISTRY_AUTHFILE")
	}
	if c.AuthMode == "credsfile" && c.Credsfile == "" {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTH_MODE=credsfile needs CONTAINER_REGISTRY_CREDSFILE")
	}

	c.Images = strings.Fields(get("CONTAINER_REGISTRY_IMAGES"))
	if c.SearchFirst, err = parseBool("CONTAINER_REGISTRY_SEARCH_FIRST", get("CONTAINER_REGISTRY_SEARCH_FIRST")); err != nil {
		return nil, err
	}
	c.TargetURL = get("CONTAINER_REGISTRY_TARGET_URL")
	if c.TargetURL == "" {
		c.TargetURL = TargetAddress(c.Host, c.Port)
	} else if _, _, err := splitHostPort("CONTAINER_REGISTRY_TARGET_URL", c.TargetURL); err != nil {
		return nil, err
	}

	c.DockerInsecure = strings.FieldsFunc(get("DOCKER_REGISTRY_INSECURE"), func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	c.DockerOCIRuntimes = get("DOCKER_OCI_RUNTIMES")
	c.DockerDefaultRuntime = get("DOCKER_DEFAULT_RUNTIME")
	c.PodmanRuntime = get("PODMAN_OCI_RUNTIME")
	c.PodmanRuntimePath = get("PODMAN_OCI_RUNTIME_PATH")
	if c.PodmanRuntime != "" && c.PodmanRuntimePath == "" {
		c.PodmanRuntimePath = "/usr/bin/" + c.PodmanRuntime
	}

	c.DeployDir = get("DEPLOY_DIR")
	c.DeployDirImages = get("DEPLOY_DIR_IMAGES")
	if c.DeployDirImages == "" && c.DeployDir != "" {
		c.DeployDirImages = filepath.Join(c.DeployDir, "images")
	}
	c.DeployDirImage = get("DEPLOY_DIR_IMAGE")
	for _, p := range []*string{&c.TopDir, &c.DeployDirImages, &c.DeployDirImage} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	c.Machine = get("MACHINE")
	c.TargetArch = get("TARGET_ARCH")
	c.PV = get("PV")
	c.ImageVersion = get("IMAGE_VERSION")
	c.NativeTool = get("CONTAINER_REGISTRY_TOOL")
	return c, nil
}

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
// uses: localhost and 127.0.0.1 become the slirp gateway 10.0.2.2.
func TargetAddress(host, port string) string {
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		host = "10.0.2.2"
	}
	return net.JoinHostPort(host, port)
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

// BakedVars is the set of variables the helper script carries as defaults,
// in a stable order. Secrets are never among them.
func (c *Config) BakedVars() [][2]string {
	kv := map[string]string{
		"CONTAINER_REGISTRY_URL":          c.URL,
		"CONTAINER_REGISTRY_NAMESPACE":    c.Namespace,
		"CONTAINER_REGISTRY_STORAGE":      c.Storage,
		"CONTAINER_REGISTRY_INSECURE":     boolStr(c.Insecure),
		"CONTAINER_REGISTRY_SECURE":       boolStr(c.Secure),
		"CONTAINER_REGISTRY_AUTH":         get(c.Vars, "CONTAINER_REGISTRY_AUTH"),
		"CONTAINER_REGISTRY_TAG_STRATEGY": strings.Join(c.TagStrategy, " "),
		"CONTAINER_REGISTRY_USERNAME":     c.Username,
		"CONTAINER_REGISTRY_CERT_DAYS":    strconv.Itoa(c.CertDays),
		"CONTAINER_REGISTRY_CA_DAYS":      strconv.Itoa(c.CADays),
		"CONTAINER_REGISTRY_CERT_SAN":     get(c.Vars, "CONTAINER_REGISTRY_CERT_SAN"),
		"CONTAINER_REGISTRY_AUTH_MODE":    c.AuthMode,
		"CONTAINER_REGISTRY_AUTHFILE":     c.Authfile,
		"CONTAINER_REGISTRY_CREDSFILE":    c.Credsfile,
		"DEPLOY_DIR_IMAGES":               c.DeployDirImages,
		"DEPLOY_DIR_IMAGE":                c.DeployDirImage,
		"TARGET_ARCH":                     c.TargetArch,
		"TOPDIR":                          c.TopDir,
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, kv[k]})
	}
	return out
}

func get(v Vars, name string) string {
	if val, ok := v[name]; ok {
		return strings.TrimSpace(val)
	}
	return Defaults[name]
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func splitHostPort(name, url string) (string, string, error) {
	if strings.Contains(url, "://") {
		return "", "", fmt.Errorf("%s: %q must be host:port without a scheme", name, url)
	}
	host, port, err := net.SplitHostPort(url)
	if err != nil {
		return "", "", fmt.Errorf("%s: %q must be host:port (e.g. localhost:5000)", name, url)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%s: %q has an invalid port %q", name, url, port)
	}
	if net.ParseIP(host) == nil && !hostRe.MatchString(host) {
		return "", "", fmt.Errorf("%s: %q has an invalid host %q", name, url, host)
	}
	return host, port, nil
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not a boolean (use 1 or 0)", name, v)
}

func parseDays(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive whole number of days", name, v)
	}
	return n, nil
}

func expandTopdir(s, topdir string) string {
	if topdir != "" {
		s = strings.ReplaceAll(s, "${TOPDIR}", topdir)
	}
	return s
}
