package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"golang.org/x/crypto/bcrypt"
)

// curlCode runs curl against the registry and returns the HTTP status.
func curlCode(t *testing.T, args ...string) string {
	t.Helper()
	testtool.Need(t, "curl")
	out, err := exec.Command("curl", append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
	if err != nil {
		t.Logf("curl %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// Secure mode with auth: TLS with the generated CA, 401 without and 200
// with the generated password, SANs, a CA that survives restarts.
func TestSecureAuth(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})
	ca := filepath.Join(e.Storage, "pki", "ca.crt")
	caBefore, err := os.ReadFile(ca)
	if err != nil {
		t.Fatalf("generate made no CA: %v", err)
	}
	stBefore, _ := os.Stat(ca)

	r := e.mustRun(t, 0, "start")
	wantOut(t, r, "secure start", "Setting up authentication", "Password saved to: "+filepath.Join(e.Storage, "auth", "password"),
		"Starting SECURE container registry", "https://"+e.URL, "secure (TLS + auth)", filepath.Join(e.Storage, "pki"), "container-registry-ca")
	pwFile := filepath.Join(e.Storage, "auth", "password")
	for _, f := range []string{pwFile, filepath.Join(e.Storage, "auth", "htpasswd"), filepath.Join(e.Storage, "pki", "ca.key"), filepath.Join(e.Storage, "http.secret")} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, err %v; want 0600", f, st.Mode().Perm(), err)
		}
	}
	pw, _ := os.ReadFile(pwFile)
	password := strings.TrimSpace(string(pw))
	url := "https://" + e.URL + "/v2/_catalog"
	if got := curlCode(t, "--cacert", ca, url); got != "401" {
		t.Errorf("anonymous catalog: %s, want 401", got)
	}
	if got := curlCode(t, "--cacert", ca, "-u", "yocto:"+password, url); got != "200" {
		t.Errorf("catalog with the generated password: %s, want 200", got)
	}
	if got := curlCode(t, "--cacert", ca, "--tls-max", "1.1", "-u", "yocto:"+password, url); got == "200" {
		t.Errorf("TLS 1.1 accepted")
	}
	r = e.mustRun(t, 0, "status")
	wantOut(t, r, "secure status", "healthy", "secure (TLS + auth)")
	r = e.mustRun(t, 0, "list")
	wantOut(t, r, "secure list", "(none)")

	testtool.Need(t, "openssl")
	out, err := exec.Command("openssl", "x509", "-in", filepath.Join(e.Storage, "pki", "server.crt"), "-noout", "-ext", "subjectAltName").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, san := range []string{"DNS:localhost", "IP Address:127.0.0.1", "IP Address:10.0.2.2"} {
		if !strings.Contains(string(out), san) {
			t.Errorf("server certificate lacks %s:\n%s", san, out)
		}
	}
	// The served certificate chains to the CA (openssl as the client).
	cmd := exec.Command("openssl", "s_client", "-connect", "127.0.0.1:"+e.Port, "-servername", "localhost", "-CAfile", ca, "-verify_return_error", "-brief")
	cmd.Stdin = strings.NewReader("")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Errorf("openssl s_client: %v\n%s", err, out)
	}

	e.mustRun(t, 0, "stop")
	e.mustRun(t, 0, "start")
	caAfter, _ := os.ReadFile(ca)
	stAfter, _ := os.Stat(ca)
	if !bytes.Equal(caBefore, caAfter) || !stAfter.ModTime().Equal(stBefore.ModTime()) {
		t.Errorf("second start replaced the CA")
	}
	pw2, _ := os.ReadFile(pwFile)
	if string(pw2) != string(pw) {
		t.Errorf("second start changed the password")
	}
	e.mustRun(t, 0, "stop")

	// Custom user and password from the environment.
	env := map[string]string{"CONTAINER_REGISTRY_USERNAME": "builder", "CONTAINER_REGISTRY_PASSWORD": "s3cret-Pass"}
	r = e.RunEnv(env, "start")
	if r.Code != 0 {
		t.Fatalf("start with custom credentials: %d\n%s", r.Code, r.Out())
	}
	if strings.Contains(r.Out(), "s3cret-Pass") {
		t.Errorf("start printed the password")
	}
	pw3, _ := os.ReadFile(pwFile)
	if strings.TrimSpace(string(pw3)) != "s3cret-Pass" {
		t.Errorf("password file = %q", pw3)
	}
	ht, _ := os.ReadFile(filepath.Join(e.Storage, "auth", "htpasswd"))
	user, hash, _ := strings.Cut(strings.TrimSpace(string(ht)), ":")
	if user != "builder" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret-Pass")) != nil {
		t.Errorf("htpasswd = %q", ht)
	}
	if got := curlCode(t, "--cacert", ca, "-u", "builder:s3cret-Pass", url); got != "200" {
		t.Errorf("catalog with the custom password: %s", got)
	}
	if r := e.RunEnv(env, "status"); r.Code != 0 {
		t.Errorf("status with custom credentials: %d\n%s", r.Code, r.Out())
	}
	if r := e.RunEnv(env, "stop"); r.Code != 0 {
		t.Errorf("stop: %d", r.Code)
	}
	log, _ := os.ReadFile(filepath.Join(e.Storage, "registry-"+e.Port+".log"))
	if strings.Contains(string(log), "s3cret-Pass") || strings.Contains(string(log), password) {
		t.Errorf("the log contains a password")
	}
	if !strings.Contains(string(log), "user=builder") {
		t.Errorf("the access log lacks the user name")
	}
}

// Secure TLS-only: anonymous requests succeed over TLS; no auth block.
func TestSecureTLSOnly(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"})
	r := e.mustRun(t, 0, "start")
	wantOut(t, r, "tls-only start", "https://"+e.URL, "secure (TLS only)")
	if strings.Contains(r.Stdout, "Setting up authentication") {
		t.Errorf("TLS-only start set up authentication:\n%s", r.Stdout)
	}
	ca := filepath.Join(e.Storage, "pki", "ca.crt")
	if got := curlCode(t, "--cacert", ca, "https://"+e.URL+"/v2/_catalog"); got != "200" {
		t.Errorf("anonymous catalog: %s, want 200", got)
	}
	cfg, _ := os.ReadFile(filepath.Join(e.Storage, "registry-config.yml"))
	if strings.Contains(string(cfg), "\nauth:") || strings.Contains(string(cfg), "htpasswd") {
		t.Errorf("TLS-only config has an auth block:\n%s", cfg)
	}
	r = e.mustRun(t, 0, "status")
	wantOut(t, r, "tls-only status", "healthy", "secure (TLS only)")
	r = e.mustRun(t, 0, "info")
	if strings.Contains(r.Stdout, "Password") {
		t.Errorf("TLS-only info shows a password file:\n%s", r.Stdout)
	}
}

// A secure registry that was never started has no password file yet: the
// commands that need it say it is not responding, not that a file is
// missing.
func TestSecureNeverStarted(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})
	for _, args := range [][]string{{"list"}, {"catalog"}, {"tags", "app"}, {"delete", "app:1"}} {
		r := e.Run(args...)
		if r.Code == 0 || !strings.Contains(r.Stdout, "Registry not responding at https://"+e.URL) || !strings.Contains(r.Stdout, "start") {
			t.Errorf("%v: exit %d\n%s", args, r.Code, r.Out())
		}
	}
}
