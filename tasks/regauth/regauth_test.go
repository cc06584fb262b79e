package regauth

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

func write(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func creds(t *testing.T, r *Resolved) authn.AuthConfig {
	t.Helper()
	c, err := r.Auth.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

func TestCredsfile(t *testing.T) {
	r, err := FromCredsfile(write(t, "# c\n\nexport CONTAINER_REGISTRY_USER=\"me\"\nCONTAINER_REGISTRY_PASSWORD='p w#x'\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if c := creds(t, r); c.Username != "me" || c.Password != "p w#x" || len(r.Warnings) != 0 {
		t.Fatalf("%+v %v", c, r.Warnings)
	}
	r, err = FromCredsfile(write(t, "CONTAINER_REGISTRY_USER=me\nCONTAINER_REGISTRY_PASSWORD=x\nCONTAINER_REGISTRY_TOKEN=tok\n", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	if c := creds(t, r); c.Username != "me" || c.Password != "tok" || len(r.Warnings) != 1 {
		t.Fatalf("token must win: %+v %v", c, r.Warnings)
	}
	if _, err := FromCredsfile(write(t, "CONTAINER_REGISTRY_PASSWORD=x\n", 0o600)); err == nil || !strings.Contains(err.Error(), "must contain CONTAINER_REGISTRY_TOKEN or both") {
		t.Fatal(err)
	}
	if _, err := FromCredsfile(write(t, "NOT VALID LINE\n", 0o600)); err == nil || !strings.Contains(err.Error(), "credentials file") {
		t.Fatal(err)
	}
}

func TestDockerConfig(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("u:p"))
	f := write(t, `{"auths":{"https://index.docker.io/v1/":{"auth":"`+b64+`"},"ghcr.io":{"identitytoken":"idt"},"reg:5000":{"registrytoken":"rt"}}}`, 0o600)
	for reg, want := range map[string]authn.AuthConfig{
		"index.docker.io": {Username: "u", Password: "p"},
		"docker.io":       {Username: "u", Password: "p"},
		"ghcr.io":         {IdentityToken: "idt"},
		"reg:5000":        {RegistryToken: "rt"},
	} {
		r, err := FromDockerConfig(f, reg)
		if err != nil {
			t.Fatal(err)
		}
		if c := creds(t, r); c != want {
			t.Errorf("%s: %+v, want %+v", reg, c, want)
		}
	}
	if _, err := FromDockerConfig(f, "quay.io"); err == nil || !strings.Contains(err.Error(), "no credentials for quay.io") {
		t.Fatal(err)
	}
	bad := write(t, `{"auths":{"x":{"auth":"!!"}}}`, 0o600)
	if _, err := FromDockerConfig(bad, "x"); err == nil || !strings.Contains(err.Error(), `auths["x"].auth is not base64`) {
		t.Fatal(err)
	}
}

func TestDestinationOptions(t *testing.T) {
	o, err := DestinationOptions("credsfile", "", "/c", Flags{UseHomeAuth: true}, nil)
	if err != nil || o.Mode != "home" {
		t.Fatalf("flag must win over configured mode: %+v %v", o, err)
	}
	if _, err := DestinationOptions("none", "", "", Flags{UseHomeAuth: true, Authfile: "a"}, nil); err == nil {
		t.Fatal("conflicting flags accepted")
	}
	if o, err := DestinationOptions("none", "", "", Flags{AuthMode: "authfile", Authfile: "a"}, nil); err != nil || o.Authfile != "a" {
		t.Fatalf("--auth-mode authfile --authfile a: %+v %v", o, err)
	}
}

// A stdin flag reads one secret: one trailing newline goes, nothing else
// changes; empty, several lines, NUL and oversized input are refused
// without quoting the input.
func TestReadStdinSecret(t *testing.T) {
	for in, want := range map[string]string{
		"s3cret":      "s3cret",
		"s3cret\n":    "s3cret",
		"s3cret\r\n":  "s3cret",
		" spaced pw ": " spaced pw ",
		"tok\t\n":     "tok\t",
		"x\n\n":       "",
		"":            "",
		"\n":          "",
		"a\nb\n":      "",
		"a\x00b":      "",
		"a\rb":        "",
		"\r\n\r\n":    "",
		"twice\n\r\n": "",
	} {
		got, err := ReadStdinSecret(strings.NewReader(in), "--password-stdin")
		switch {
		case want != "" && (err != nil || got != want):
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		case want == "" && err == nil:
			t.Errorf("%q: accepted as %q", in, got)
		case want == "" && !strings.HasPrefix(err.Error(), "--password-stdin: "):
			t.Errorf("%q: error does not name the flag: %v", in, err)
		case want == "" && strings.TrimSpace(in) != "" && strings.Contains(err.Error(), strings.TrimSpace(in)):
			t.Errorf("%q: error quotes the input: %v", in, err)
		}
	}
	big := strings.Repeat("x", MaxStdinSecret+1)
	if _, err := ReadStdinSecret(strings.NewReader(big), "--token-stdin"); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized input: %v", err)
	}
	if s, err := ReadStdinSecret(strings.NewReader(big[1:]), "--token-stdin"); err != nil || len(s) != MaxStdinSecret {
		t.Errorf("input of exactly %d bytes: %d, %v", MaxStdinSecret, len(s), err)
	}
	if _, err := ReadStdinSecret(nil, "--token-stdin"); err == nil {
		t.Error("no standard input accepted")
	}
}

// The stdin flags give the same credentials as --creds and --token, with
// their own names as the source and without the argument-list warning;
// combinations that would give two secrets are refused before stdin is
// read.
func TestStdinFlags(t *testing.T) {
	getenv := func(k string) string { return map[string]string{"CONTAINER_REGISTRY_USER": "bot"}[k] }
	var stdin *strings.Reader
	resolve := func(f Flags, in string) (*Resolved, error) {
		stdin = strings.NewReader(in)
		f.Stdin = stdin
		o, err := DestinationOptions("none", "", "", f, getenv)
		if err != nil {
			return nil, err
		}
		return Resolve(o, "reg:5000")
	}
	r, err := resolve(Flags{Creds: "me", PasswordStdin: true}, "pw:with:colons\n")
	if err != nil {
		t.Fatal(err)
	}
	if c := creds(t, r); c.Username != "me" || c.Password != "pw:with:colons" || r.Source != "--password-stdin (user me)" || len(r.Warnings) != 0 {
		t.Errorf("--creds me --password-stdin: %+v, %q, %q", c, r.Source, r.Warnings)
	}
	r, err = resolve(Flags{TokenStdin: true}, "tok\n")
	if err != nil {
		t.Fatal(err)
	}
	if c := creds(t, r); c.Username != "bot" || c.Password != "tok" || r.Source != "--token-stdin" || len(r.Warnings) != 0 {
		t.Errorf("--token-stdin: %+v, %q, %q", c, r.Source, r.Warnings)
	}
	r, err = resolve(Flags{Creds: "me", PasswordStdin: true, CredsFlag: "--src-creds", PasswordStdinFlag: "--src-password-stdin"}, "pw")
	if err != nil || r.Source != "--src-password-stdin (user me)" {
		t.Errorf("source flags: %+v, %v", r, err)
	}
	for _, c := range []struct {
		f    Flags
		want string
	}{
		{Flags{PasswordStdin: true}, "--password-stdin needs the user name: --creds USER --password-stdin"},
		{Flags{Creds: "me:pw", PasswordStdin: true}, "both give a password"},
		{Flags{Creds: "me", PasswordStdin: true, TokenStdin: true}, "--password-stdin and --token-stdin are exclusive"},
		{Flags{Creds: "me", TokenStdin: true}, "--creds and --token-stdin are exclusive"},
		{Flags{Token: "t", TokenStdin: true}, "--token and --token-stdin are exclusive"},
		{Flags{Creds: "me", Token: "t", PasswordStdin: true}, "--token and --password-stdin are exclusive"},
		{Flags{Creds: "me", CredsFlag: "--src-creds", PasswordStdin: true, PasswordStdinFlag: "--src-password-stdin", TokenStdinFlag: "--src-token-stdin", TokenStdin: true}, "--src-password-stdin and --src-token-stdin are exclusive"},
	} {
		if _, err := resolve(c.f, "secret\n"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
		if stdin.Len() != len("secret\n") {
			t.Errorf("%+v: standard input read, yet the flags were refused", c.f)
		}
	}
	if _, err := resolve(Flags{TokenStdin: true}, "\n"); err == nil || !strings.Contains(err.Error(), "--token-stdin: standard input is empty") {
		t.Errorf("empty stdin: %v", err)
	}
	// Secrets given as arguments warn about history and ps.
	for _, f := range []Flags{{Creds: "me:pw"}, {Token: "t"}} {
		o, _ := DestinationOptions("none", "", "", f, getenv)
		r, err := Resolve(o, "reg:5000")
		if err != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "other local users can read the") {
			t.Errorf("%+v: warnings %q, %v", f, r.Warnings, err)
		}
	}
}
