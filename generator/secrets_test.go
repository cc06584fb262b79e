package generator

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// wantMode fails unless path exists with mode perm.
func wantMode(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if st.Mode().Perm() != perm {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), perm)
	}
}

// Outside secure mode there are no secrets to make.
func TestEnsureSecretsInsecure(t *testing.T) {
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_INSECURE": "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []SecretsStep{AtGenerate, AtStart} {
		rep, err := EnsureSecrets(c, time.Now(), step)
		if err != nil || rep.PKI != nil || rep.Auth != nil {
			t.Fatalf("step %d: %+v, %v", step, rep, err)
		}
	}
	for _, dir := range []string{c.PKIDir(), c.AuthDir()} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s exists in insecure mode (%v)", dir, err)
		}
	}
}

// generate makes the PKI and leaves auth/ to the first start; start makes
// the password once and keeps it; keys, password and htpasswd are 0600.
func TestEnsureSecretsGenerateThenStart(t *testing.T) {
	c := secureConfig(t, nil)
	rep, err := EnsureSecrets(c, time.Now(), AtGenerate)
	if err != nil {
		t.Fatal(err)
	}
	if rep.PKI == nil || !rep.PKI.CreatedCA || !rep.PKI.CreatedServer || rep.PKI.Dir != c.PKIDir() || rep.PKI.CACert != c.CACert() {
		t.Fatalf("generate: PKI report %+v", rep.PKI)
	}
	if rep.Auth != nil {
		t.Fatalf("generate without a password set up auth: %+v", rep.Auth)
	}
	if _, err := os.Stat(c.PasswordFile()); !os.IsNotExist(err) {
		t.Fatalf("generate wrote %s (%v)", c.PasswordFile(), err)
	}

	rep, err = EnsureSecrets(c, time.Now(), AtStart)
	if err != nil {
		t.Fatal(err)
	}
	if rep.PKI.CreatedCA || rep.PKI.CreatedServer {
		t.Errorf("start replaced the PKI: %+v", rep.PKI)
	}
	a := rep.Auth
	if a == nil || a.Source != "generated" || !a.Changed || a.User != "yocto" || a.PasswordFile != c.PasswordFile() || a.Dir != c.AuthDir() {
		t.Fatalf("start: auth report %+v", a)
	}
	for _, f := range []string{c.CAKey(), c.ServerKey(), c.PasswordFile(), c.HtpasswdFile()} {
		wantMode(t, f, 0o600)
	}
	wantMode(t, c.AuthDir(), 0o700)
	wantMode(t, c.PKIDir(), 0o700)
	pw, _ := os.ReadFile(c.PasswordFile())
	password := strings.TrimSpace(string(pw))
	if len(password) != 24 || !htpasswdMatches(c.HtpasswdFile(), "yocto", password) {
		t.Fatalf("password %q does not match the htpasswd file", password)
	}

	rep, err = EnsureSecrets(c, time.Now(), AtStart)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Auth.Source != "existing file" || rep.Auth.Changed {
		t.Errorf("second start: auth report %+v", rep.Auth)
	}
	if pw2, _ := os.ReadFile(c.PasswordFile()); string(pw2) != string(pw) {
		t.Errorf("second start changed the password")
	}
}

// A configured password is written at generate already, and wins over the
// file at start.
func TestEnsureSecretsConfiguredPassword(t *testing.T) {
	c := secureConfig(t, config.Vars{"CONTAINER_REGISTRY_PASSWORD": "s3cret", "CONTAINER_REGISTRY_USERNAME": "builder"})
	rep, err := EnsureSecrets(c, time.Now(), AtGenerate)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Auth == nil || rep.Auth.Source != "environment" || rep.Auth.User != "builder" {
		t.Fatalf("generate: auth report %+v", rep.Auth)
	}
	ht, _ := os.ReadFile(c.HtpasswdFile())
	user, hash, _ := strings.Cut(strings.TrimSpace(string(ht)), ":")
	if user != "builder" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")) != nil {
		t.Fatalf("htpasswd = %q", ht)
	}
	c.Password = "other"
	rep, err = EnsureSecrets(c, time.Now(), AtStart)
	if err != nil || rep.Auth.Source != "environment" || !rep.Auth.Changed {
		t.Fatalf("start with another password: %+v, %v", rep.Auth, err)
	}
	if pw, _ := os.ReadFile(c.PasswordFile()); string(pw) != "other\n" {
		t.Errorf("password file = %q", pw)
	}
}

// TLS only: the PKI, no auth/.
func TestEnsureSecretsTLSOnly(t *testing.T) {
	c := secureConfig(t, config.Vars{"CONTAINER_REGISTRY_AUTH": "0", "CONTAINER_REGISTRY_PASSWORD": "unused"})
	rep, err := EnsureSecrets(c, time.Now(), AtStart)
	if err != nil || rep.PKI == nil || rep.Auth != nil {
		t.Fatalf("%+v, %v", rep, err)
	}
	if _, err := os.Stat(c.AuthDir()); !os.IsNotExist(err) {
		t.Errorf("TLS only made %s (%v)", c.AuthDir(), err)
	}
}

// When auth/ cannot be made, the error says so and the report keeps what
// was done before (the PKI).
func TestEnsureSecretsAuthFails(t *testing.T) {
	c := secureConfig(t, nil)
	writeFile(t, c.AuthDir(), "not a directory")
	rep, err := EnsureSecrets(c, time.Now(), AtStart)
	if err == nil || !strings.HasPrefix(err.Error(), "setting up authentication: ") {
		t.Fatalf("err = %v", err)
	}
	if rep == nil || rep.PKI == nil || !rep.PKI.CreatedCA || rep.Auth != nil {
		t.Fatalf("report = %+v", rep)
	}
}
