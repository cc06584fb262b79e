// Package regauth resolves registry credentials from the sources the
// helper script accepts: a Docker config.json (the user's own, opt-in, or
// an explicit file, with credential helpers), a key=value credentials
// file, environment variables, or credentials given on the command line.
// It never prints or logs a secret, and never passes one in a process's
// arguments (credential helpers get the server name on stdin).
package regauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/hashicorp/go-envparse"
)

// Modes are the valid authentication modes.
var Modes = []string{"none", "home", "authfile", "credsfile", "env"}

// Options are the credential sources in effect. Flags fill Creds and Token
// (the highest precedence), then Mode with Authfile/Credsfile.
type Options struct {
	Mode      string // none, home, authfile, credsfile or env ("" is none)
	Authfile  string
	Credsfile string
	Creds     string // user:password from the command line
	Token     string // token from the command line
	// Getenv reads CONTAINER_REGISTRY_TOKEN/USER/PASSWORD for mode env and
	// HOME for mode home.
	Getenv func(string) string
	// Flag names for messages, e.g. "--creds" or "--src-creds".
	CredsFlag, TokenFlag string
	// FromStdin says the password of Creds, or Token, was read from
	// standard input: it was never in an argument list, so no warning.
	// CredsFlag and TokenFlag then name the stdin flags.
	FromStdin bool
	// PasswordStdinFlag and TokenStdinFlag name the flags that read the
	// same secrets from standard input, for the warning about Creds or
	// Token (default --password-stdin and --token-stdin).
	PasswordStdinFlag, TokenStdinFlag string
}

// Resolved is the authenticator to use and a description of where it came
// from that is safe to print.
type Resolved struct {
	Auth   authn.Authenticator
	Source string // e.g. "credentials file /x (token)"; "" when anonymous
	// Warnings are one-line cautions (secrets in shell history, file
	// permissions) that callers print.
	Warnings []string
}

// Anonymous reports whether no credentials are used.
func (r *Resolved) Anonymous() bool { return r.Auth == authn.Anonymous }

// Resolve returns the credentials for registry (host[:port]).
func Resolve(o Options, registry string) (*Resolved, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	credsFlag, tokenFlag := or(o.CredsFlag, "--creds"), or(o.TokenFlag, "--token")
	// argvWarning is the caution for a secret given as an argument.
	argvWarning := func(flag, secret, stdinFlag string) []string {
		if o.FromStdin {
			return nil
		}
		return []string{fmt.Sprintf("%s: other local users can read the %s in this command's argument list (ps) while it runs, and your shell history keeps it; prefer %s, --credsfile or CONTAINER_REGISTRY_AUTH_MODE=env", flag, secret, stdinFlag)}
	}
	switch {
	case o.Creds != "" && o.Token != "":
		return nil, fmt.Errorf("%s and %s are exclusive; give one", credsFlag, tokenFlag)
	case o.Token != "":
		return &Resolved{
			Auth:     tokenAuth(o.Token, getenv("CONTAINER_REGISTRY_USER")),
			Source:   tokenFlag,
			Warnings: argvWarning(tokenFlag, "token", or(o.TokenStdinFlag, "--token-stdin")),
		}, nil
	case o.Creds != "":
		user, pass, ok := strings.Cut(o.Creds, ":")
		if !ok || user == "" || pass == "" {
			return nil, fmt.Errorf("%s: want USER:PASSWORD", credsFlag)
		}
		return &Resolved{
			Auth:     authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}),
			Source:   fmt.Sprintf("%s (user %s)", credsFlag, user),
			Warnings: argvWarning(credsFlag, "password", or(o.PasswordStdinFlag, "--password-stdin")),
		}, nil
	}
	switch o.Mode {
	case "", "none":
		return &Resolved{Auth: authn.Anonymous}, nil
	case "home":
		home := getenv("HOME")
		if home == "" {
			return nil, errors.New("auth mode home: HOME is not set, cannot find ~/.docker/config.json")
		}
		f := filepath.Join(home, ".docker", "config.json")
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("auth mode home: %s not found (run `docker login` first, or use --authfile/--credsfile)", f)
		}
		return FromDockerConfig(f, registry)
	case "authfile":
		if o.Authfile == "" {
			return nil, errors.New("auth mode authfile needs an auth file (--authfile or CONTAINER_REGISTRY_AUTHFILE)")
		}
		return FromDockerConfig(o.Authfile, registry)
	case "credsfile":
		if o.Credsfile == "" {
			return nil, errors.New("auth mode credsfile needs a credentials file (--credsfile or CONTAINER_REGISTRY_CREDSFILE)")
		}
		return FromCredsfile(o.Credsfile)
	case "env":
		tok, user, pass := getenv("CONTAINER_REGISTRY_TOKEN"), getenv("CONTAINER_REGISTRY_USER"), getenv("CONTAINER_REGISTRY_PASSWORD")
		switch {
		case tok != "":
			return &Resolved{Auth: tokenAuth(tok, user), Source: "environment (CONTAINER_REGISTRY_TOKEN)"}, nil
		case user != "" && pass != "":
			return &Resolved{Auth: authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}),
				Source: fmt.Sprintf("environment (user %s)", user)}, nil
		}
		return nil, errors.New("auth mode env needs CONTAINER_REGISTRY_TOKEN or both CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD in the environment")
	}
	return nil, fmt.Errorf("unknown auth mode %q (valid: %s)", o.Mode, strings.Join(Modes, ", "))
}

// tokenAuth sends a registry token the way `docker login` does: as the
// password of user (default "token"), which works with htpasswd
// registries and with the token services of GHCR, GitLab and Docker Hub.
func tokenAuth(token, user string) authn.Authenticator {
	if user == "" {
		user = "token"
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: token})
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// FromCredsfile reads a key=value credentials file: CONTAINER_REGISTRY_TOKEN,
// or CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD; comments,
// blank lines, `export` and quotes are allowed. The token wins.
func FromCredsfile(path string) (*Resolved, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("credentials file %s: not found", path)
		}
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	defer f.Close()
	res, err := ParseCredentials(f, path)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("credentials file %s is readable by others (mode %04o); chmod 600 it", path, fi.Mode().Perm()))
	}
	return res, nil
}

// ParseCredentials reads credentials-file text from r; path names it in
// messages. Parse errors never quote the file's content, which holds
// secrets.
func ParseCredentials(r io.Reader, path string) (*Resolved, error) {
	vals, err := envparse.Parse(r)
	if err != nil {
		var pe *envparse.ParseError
		if errors.As(err, &pe) {
			reason := "not a KEY=value line"
			for _, known := range []error{envparse.ErrMissingSeparator, envparse.ErrEmptyKey, envparse.ErrUnmatchedDouble,
				envparse.ErrUnmatchedSingle, envparse.ErrIncompleteEscape, envparse.ErrIncompleteHex} {
				if errors.Is(pe.Err, known) {
					reason = known.Error()
				}
			}
			return nil, fmt.Errorf("credentials file %s: line %d: %s", path, pe.Line, reason)
		}
		return nil, fmt.Errorf("credentials file %s: not a key=value file", path)
	}
	res := &Resolved{}
	tok, user, pass := vals["CONTAINER_REGISTRY_TOKEN"], vals["CONTAINER_REGISTRY_USER"], vals["CONTAINER_REGISTRY_PASSWORD"]
	switch {
	case tok != "":
		res.Auth, res.Source = tokenAuth(tok, user), fmt.Sprintf("credentials file %s (token)", path)
	case user != "" && pass != "":
		res.Auth = authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
		res.Source = fmt.Sprintf("credentials file %s (user %s)", path, user)
	default:
		return nil, fmt.Errorf("credentials file %s must contain CONTAINER_REGISTRY_TOKEN or both CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD", path)
	}
	return res, nil
}

type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

type dockerConfig struct {
	Auths       map[string]dockerAuth `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

// FromDockerConfig reads the credentials for registry from a Docker
// config.json: credHelpers[registry], then an auths entry, then the
// credsStore helper. Helpers are used when docker-credential-<name> is on
// PATH.
func FromDockerConfig(path, registry string) (*Resolved, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("auth file %s: not found", path)
		}
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("auth file %s: not a Docker config.json: %w", path, err)
	}
	host := normalizeHost(registry)
	if h, ok := lookupHost(cfg.CredHelpers, host); ok {
		return fromHelper(path, h, registry, "credHelpers")
	}
	for key, a := range cfg.Auths {
		if normalizeHost(key) != host {
			continue
		}
		ac := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("auth file %s: auths[%q].auth is not base64", path, key)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("auth file %s: auths[%q].auth does not decode to user:password", path, key)
			}
			ac.Username, ac.Password = u, p
		}
		if ac == (authn.AuthConfig{}) {
			continue // an empty marker entry written beside a credsStore
		}
		desc := fmt.Sprintf("auth file %s (%s", path, key)
		if ac.Username != "" {
			desc += ", user " + ac.Username
		}
		return &Resolved{Auth: authn.FromConfig(ac), Source: desc + ")"}, nil
	}
	if cfg.CredsStore != "" {
		if _, err := exec.LookPath("docker-credential-" + cfg.CredsStore); err == nil {
			return fromHelper(path, cfg.CredsStore, registry, "credsStore")
		}
		return nil, fmt.Errorf("auth file %s has no auths entry for %s and its credsStore helper docker-credential-%s is not on PATH", path, registry, cfg.CredsStore)
	}
	return nil, fmt.Errorf("auth file %s has no credentials for %s (no auths, credHelpers or credsStore entry)", path, registry)
}

func fromHelper(path, helper, registry, field string) (*Resolved, error) {
	prog := "docker-credential-" + helper
	if _, err := exec.LookPath(prog); err != nil {
		return nil, fmt.Errorf("auth file %s: %s names helper %s, which is not on PATH", path, field, prog)
	}
	server := registry
	if normalizeHost(registry) == "index.docker.io" {
		server = "https://index.docker.io/v1/"
	}
	creds, err := client.Get(client.NewShellProgramFunc(prog), server)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: helper %s has no credentials for %s: %v", path, prog, registry, err)
	}
	ac := authn.AuthConfig{Username: creds.Username, Password: creds.Secret}
	if creds.Username == "<token>" {
		ac = authn.AuthConfig{IdentityToken: creds.Secret}
	}
	return &Resolved{Auth: authn.FromConfig(ac), Source: fmt.Sprintf("auth file %s (helper %s)", path, prog)}, nil
}

func lookupHost(m map[string]string, host string) (string, bool) {
	for k, v := range m {
		if normalizeHost(k) == host {
			return v, true
		}
	}
	return "", false
}

// normalizeHost reduces a config.json key or registry name to host[:port]:
// no scheme, no path; docker.io spellings become index.docker.io.
func normalizeHost(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	s = strings.ToLower(s)
	switch s {
	case "docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "index.docker.io"
	}
	return s
}

// Flags are the destination auth options of the command line.
type Flags struct {
	AuthMode    string
	UseHomeAuth bool
	Authfile    string
	Credsfile   string
	Creds       string
	Token       string
	// CredsFlag and TokenFlag name the flags in messages (default
	// --creds and --token).
	CredsFlag, TokenFlag string

	// PasswordStdin reads the password of the user named by Creds (the
	// user alone, no ':') from Stdin; TokenStdin reads the token from
	// Stdin. Either keeps the secret out of every argument list.
	PasswordStdin, TokenStdin bool
	Stdin                     io.Reader
	// PasswordStdinFlag and TokenStdinFlag name them in messages
	// (default --password-stdin and --token-stdin).
	PasswordStdinFlag, TokenStdinFlag string
}

// MaxStdinSecret is the most a stdin flag reads: a password or a token,
// never a file.
const MaxStdinSecret = 64 << 10

// ReadStdinSecret reads one secret from r for flag: all of it, without one
// trailing newline ("\n" or "\r\n", as echo or a here-string leaves it).
// Empty input, a second line and more than MaxStdinSecret bytes are errors;
// no message quotes the input.
func ReadStdinSecret(r io.Reader, flag string) (string, error) {
	if r == nil {
		return "", fmt.Errorf("%s: no standard input", flag)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxStdinSecret+1))
	if err != nil {
		return "", fmt.Errorf("%s: reading standard input: %w", flag, err)
	}
	if len(data) > MaxStdinSecret {
		return "", fmt.Errorf("%s: standard input holds more than %d bytes; want one secret", flag, MaxStdinSecret)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	switch {
	case s == "":
		return "", fmt.Errorf("%s: standard input is empty; pipe the secret in (e.g. ... %s < FILE)", flag, flag)
	case strings.ContainsAny(s, "\r\n\x00"):
		return "", fmt.Errorf("%s: standard input holds more than one line (or a NUL byte); want the secret alone", flag)
	}
	return s, nil
}

// stdinSecret fills o.Creds or o.Token from f.Stdin when a stdin flag is
// set, after checking that the flags given agree.
func (f Flags) stdinSecret(o *Options) error {
	pwFlag, tokFlag := or(f.PasswordStdinFlag, "--password-stdin"), or(f.TokenStdinFlag, "--token-stdin")
	credsFlag, tokenFlag := or(f.CredsFlag, "--creds"), or(f.TokenFlag, "--token")
	o.PasswordStdinFlag, o.TokenStdinFlag = pwFlag, tokFlag
	switch {
	case !f.PasswordStdin && !f.TokenStdin:
		return nil
	case f.PasswordStdin && f.TokenStdin:
		return fmt.Errorf("%s and %s are exclusive (standard input holds one secret); give one", pwFlag, tokFlag)
	case f.TokenStdin && f.Creds != "":
		return fmt.Errorf("%s and %s are exclusive; give one", credsFlag, tokFlag)
	case f.Token != "":
		flag := pwFlag
		if f.TokenStdin {
			flag = tokFlag
		}
		return fmt.Errorf("%s and %s are exclusive; give one", tokenFlag, flag)
	case f.PasswordStdin && f.Creds == "":
		return fmt.Errorf("%s needs the user name: %s USER %s", pwFlag, credsFlag, pwFlag)
	case f.PasswordStdin && strings.Contains(f.Creds, ":"):
		return fmt.Errorf("%s USER:PASSWORD and %s both give a password; with %s, give %s the user name alone", credsFlag, pwFlag, pwFlag, credsFlag)
	}
	flag := tokFlag
	if f.PasswordStdin {
		flag = pwFlag
	}
	secret, err := ReadStdinSecret(f.Stdin, flag)
	if err != nil {
		return err
	}
	o.FromStdin = true
	if f.PasswordStdin {
		o.Creds, o.CredsFlag = f.Creds+":"+secret, pwFlag
	} else {
		o.Token, o.TokenFlag = secret, tokFlag
	}
	return nil
}

// DestinationOptions combines flags with the configured mode
// (CONTAINER_REGISTRY_AUTH_MODE/AUTHFILE/CREDSFILE): a flag choosing a
// source wins over the configuration; two flags choosing different
// sources are an error.
func DestinationOptions(mode, authfile, credsfile string, f Flags, getenv func(string) string) (Options, error) {
	o := Options{Mode: mode, Authfile: authfile, Credsfile: credsfile, Creds: f.Creds, Token: f.Token, Getenv: getenv, CredsFlag: f.CredsFlag, TokenFlag: f.TokenFlag}
	if err := f.stdinSecret(&o); err != nil {
		return o, err
	}
	var chosen []string
	if f.AuthMode != "" {
		o.Mode = f.AuthMode
		chosen = append(chosen, "--auth-mode "+f.AuthMode)
	}
	if f.UseHomeAuth {
		o.Mode = "home"
		chosen = append(chosen, "--use-home-auth")
	}
	if f.Authfile != "" {
		o.Mode, o.Authfile = "authfile", f.Authfile
		chosen = append(chosen, "--authfile")
	}
	if f.Credsfile != "" {
		o.Mode, o.Credsfile = "credsfile", f.Credsfile
		chosen = append(chosen, "--credsfile")
	}
	if len(chosen) > 1 && !(len(chosen) == 2 && f.AuthMode != "" && strings.HasPrefix(chosen[1], "--"+f.AuthMode)) {
		return o, fmt.Errorf("conflicting auth options: %s; give one", strings.Join(chosen, ", "))
	}
	if o.Mode != "" && !slices.Contains(Modes, o.Mode) {
		return o, fmt.Errorf("unknown auth mode %q (valid: %s)", o.Mode, strings.Join(Modes, ", "))
	}
	return o, nil
}
