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
