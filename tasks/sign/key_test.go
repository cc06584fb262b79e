package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
)

func testConfig(t *testing.T, vars config.Vars) *config.Config {
	t.Helper()
	all := config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_SIGN": "1"}
	for k, v := range vars {
		all[k] = v
	}
	c, err := config.FromVars(all)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestEnsureKeyGenerated(t *testing.T) {
	c := testConfig(t, nil)
	rep, err := EnsureKey(c)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Created || rep.External || rep.Key != c.SigningKeyFile() || rep.Public != c.SigningPubFile() {
		t.Fatalf("report %+v", rep)
	}
	for f, want := range map[string]os.FileMode{c.SigningKeyFile(): 0o600, c.SigningPassFile(): 0o600, c.SigningPubFile(): 0o644, c.PKIDir(): 0o700} {
		if got := mode(t, f); got != want {
			t.Errorf("%s: mode %04o, want %04o", f, got, want)
		}
	}
	data, _ := os.ReadFile(c.SigningKeyFile())
	if !strings.HasPrefix(string(data), "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----") {
		t.Fatalf("key file starts %q", data[:40])
	}
	k, err := LoadKey(c)
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint != rep.Fingerprint || !strings.HasPrefix(k.Fingerprint, "sha256:") {
		t.Fatalf("fingerprint %s, report %s", k.Fingerprint, rep.Fingerprint)
	}
	priv, err := k.Private()
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(k.Public) {
		t.Fatal("private key does not match signing.pub")
	}
	// Never replaced.
	again, err := EnsureKey(c)
	if err != nil || again.Created || again.PublicWritten || again.Fingerprint != rep.Fingerprint {
		t.Fatalf("second EnsureKey: %+v, %v", again, err)
	}
	// A key without its passphrase is reported, not replaced.
	os.Remove(c.SigningPassFile())
	if _, err := EnsureKey(c); err == nil || !strings.Contains(err.Error(), "incomplete signing key") {
		t.Fatalf("want incomplete key error, got %v", err)
	}
}

// writeExternal writes a cosign-format key with pass and returns its path.
func writeExternal(t *testing.T, pass string) (string, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptKey(priv, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "release.key")
	if err := os.WriteFile(path, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, priv
}

func TestEnsureKeyExternal(t *testing.T) {
	keyFile, priv := writeExternal(t, "release pass")
	passFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("release pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": keyFile, "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": passFile})
	rep, err := EnsureKey(c)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.External || rep.Created || !rep.PublicWritten || rep.Fingerprint != Fingerprint(&priv.PublicKey) {
		t.Fatalf("report %+v", rep)
	}
	if _, err := os.Stat(c.SigningKeyFile()); err == nil {
		t.Fatal("a key was generated beside the external one")
	}

	t.Run("passphrase from the environment", func(t *testing.T) {
		c := testConfig(t, config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": keyFile})
		t.Setenv(PasswordEnv, "release pass")
		if _, err := EnsureKey(c); err != nil {
			t.Fatal(err)
		}
	})
	bad := map[string]struct {
		vars config.Vars
		prep func(t *testing.T)
		want string
	}{
		"no passphrase": {vars: config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": keyFile}, want: "COSIGN_PASSWORD"},
		"wrong passphrase": {vars: config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": keyFile},
			prep: func(t *testing.T) { t.Setenv(PasswordEnv, "nope") }, want: "wrong passphrase"},
		"readable passphrase file": {vars: config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": keyFile, "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": passFile},
			prep: func(t *testing.T) {
				os.Chmod(passFile, 0o644)
				t.Cleanup(func() { os.Chmod(passFile, 0o600) })
			}, want: "make it 0600"},
		"not a key": {vars: config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": passFile, "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": passFile}, want: "not a cosign private key"},
		"a device":  {vars: config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": "/dev/zero", "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": passFile}, want: "/dev/zero"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			t.Setenv(PasswordEnv, "")
			os.Unsetenv(PasswordEnv)
			if tc.prep != nil {
				tc.prep(t)
			}
			_, err := EnsureKey(testConfig(t, tc.vars))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}

func TestDecryptKeyRefusesCostlyKDF(t *testing.T) {
	data := []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" +
		"eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjoxMDczNzQxODI0LCJyIjo4LCJwIjoxfX19\n" +
		"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
	_, err := DecryptKey(data, []byte("x"), "big.key")
	if err == nil || !strings.Contains(err.Error(), "unsupported key derivation") {
		t.Fatalf("got %v", err)
	}
}

// A push with an external key already checked at generate/start does not
// decrypt it until it has something to sign (a re-push never does); a
// changed passphrase or key file is checked again.
func TestLoadKeyExternalLazy(t *testing.T) {
	keyFile, priv := writeExternal(t, "release pass")
	c := testConfig(t, config.Vars{"CONTAINER_REGISTRY_SIGNING_KEY": keyFile})
	t.Setenv(PasswordEnv, "release pass")
	if _, err := EnsureKey(c); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKey(c)
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint != Fingerprint(&priv.PublicKey) {
		t.Fatal("wrong public key")
	}
	if st, err := os.Stat(filepath.Join(c.PKIDir(), "signing.src")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing.src: %v", err)
	}
	// Another passphrase is checked at once.
	t.Setenv(PasswordEnv, "wrong")
	if _, err := LoadKey(c); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("LoadKey with a wrong passphrase: %v", err)
	}
	t.Setenv(PasswordEnv, "release pass")
	other, otherPriv := writeExternal(t, "release pass")
	data, _ := os.ReadFile(other)
	if err := os.WriteFile(keyFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := LoadKey(c); err != nil || k.Fingerprint != Fingerprint(&otherPriv.PublicKey) {
		t.Fatalf("a changed key file: %v; signing.pub not rewritten", err)
	}
}
