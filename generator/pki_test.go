package generator

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

func secureConfig(t *testing.T, extra config.Vars) *config.Config {
	t.Helper()
	v := config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_STORAGE": t.TempDir(),
		"CONTAINER_REGISTRY_CERT_SAN": "DNS:myhost.local,IP:192.168.1.100"}
	c, err := config.FromVars(v.Overlay(extra))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testtool.Need(t, "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// openssl reads the certificates as we meant them: SANs, validity, key
// usage, CA:TRUE only on the CA, and the chain verifies.
func TestPKIWithOpenSSL(t *testing.T) {
	c := secureConfig(t, config.Vars{"CONTAINER_REGISTRY_CERT_DAYS": "30", "CONTAINER_REGISTRY_CA_DAYS": "100"})
	now := time.Now()
	rep, err := ensurePKI(c, now)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.CreatedCA || !rep.CreatedServer {
		t.Fatalf("report = %+v", rep)
	}
	ca := openssl(t, "x509", "-in", c.CACert(), "-noout", "-text")
	srv := openssl(t, "x509", "-in", c.ServerCert(), "-noout", "-text")
	for _, want := range []string{"CA:TRUE", "Certificate Sign, CRL Sign"} {
		if !strings.Contains(ca, want) {
			t.Errorf("CA lacks %q:\n%s", want, ca)
		}
	}
	for _, want := range []string{"CA:FALSE", "Digital Signature", "TLS Web Server Authentication",
		"DNS:localhost", "DNS:myhost.local", "IP Address:127.0.0.1", "IP Address:10.0.2.2", "IP Address:192.168.1.100",
		"id-ecPublicKey", "prime256v1"} {
		if !strings.Contains(srv, want) {
			t.Errorf("server certificate lacks %q:\n%s", want, srv)
		}
	}
	if strings.Contains(srv, "CA:TRUE") {
		t.Error("server certificate claims CA:TRUE")
	}
	if out := openssl(t, "verify", "-CAfile", c.CACert(), c.ServerCert()); !strings.Contains(out, "OK") {
		t.Errorf("openssl verify: %s", out)
	}
	// Validity: the server expires after 30 days, the CA after 100.
	openssl(t, "x509", "-in", c.ServerCert(), "-noout", "-checkend", "2505600") // 29 days
	if out, err := exec.Command("openssl", "x509", "-in", c.ServerCert(), "-noout", "-checkend", "2678400").CombinedOutput(); err == nil {
		t.Errorf("server certificate valid beyond 31 days: %s", out)
	}
	openssl(t, "x509", "-in", c.CACert(), "-noout", "-checkend", "8553600") // 99 days
	for _, key := range []string{c.CAKey(), c.ServerKey()} {
		openssl(t, "pkey", "-in", key, "-noout")
	}
}

// A Go TLS client that trusts only our CA completes a handshake with the
// server certificate for every name targets and the host use.
func TestPKITLSHandshake(t *testing.T) {
	c := secureConfig(t, nil)
	if _, err := ensurePKI(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(c.ServerCert(), c.ServerKey())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(c.CACert())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	for _, name := range []string{"localhost", "127.0.0.1", "10.0.2.2", "myhost.local", "192.168.1.100"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Errorf("handshake as %s: %v", name, err)
			continue
		}
		conn.Close()
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "evil.example"})
	if err == nil {
		conn.Close()
		t.Error("handshake for a name outside the SANs succeeded")
	}
}

// Existing keys and certificates are never regenerated; a server
// certificate that no longer covers the configuration is reported.
func TestPKIKeptAndReported(t *testing.T) {
	c := secureConfig(t, nil)
	if _, err := ensurePKI(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.CACert(), c.CAKey(), c.ServerCert(), c.ServerKey())
	c2 := secureConfig(t, config.Vars{"CONTAINER_REGISTRY_STORAGE": c.Storage, "CONTAINER_REGISTRY_CERT_SAN": "DNS:newhost.lan"})
	rep, err := ensurePKI(c2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.CreatedCA || rep.CreatedServer || len(rep.Missing) != 1 || rep.Missing[0] != "DNS:newhost.lan" {
		t.Errorf("report = %+v", rep)
	}
	if after := snapshot(t, c.CACert(), c.CAKey(), c.ServerCert(), c.ServerKey()); after != before {
		t.Error("PKI files changed")
	}
	// Removing the server pair issues a new one from the same CA.
	os.Remove(c.ServerCert())
	os.Remove(c.ServerKey())
	rep, err = ensurePKI(c2, time.Now())
	if err != nil || rep.CreatedCA || !rep.CreatedServer {
		t.Fatalf("reissue: %+v %v", rep, err)
	}
	if out := openssl(t, "verify", "-CAfile", c.CACert(), c.ServerCert()); !strings.Contains(out, "OK") {
		t.Errorf("reissued certificate does not verify: %s", out)
	}
	// A lone key is never overwritten.
	os.Remove(c.CACert())
	if _, err := ensurePKI(c2, time.Now()); err == nil || !strings.Contains(err.Error(), "incomplete CA") {
		t.Errorf("lone CA key: %v", err)
	}
}

func TestPKIModes(t *testing.T) {
	c := secureConfig(t, nil)
	if err := os.MkdirAll(c.PKIDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(c.PKIDir(), 0o777)
	if _, err := ensurePKI(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		c.PKIDir(): 0o700 | os.ModeDir, c.CAKey(): 0o600, c.ServerKey(): 0o600, c.CACert(): 0o644, c.ServerCert(): 0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s mode = %v, want %v", path, st.Mode(), want)
		}
	}
}

// Keys left readable by others (made by hand, or by an older version) are
// set to 0600 the next time the PKI is ensured; they are not replaced.
func TestPKIKeysTightened(t *testing.T) {
	c := secureConfig(t, nil)
	if _, err := ensurePKI(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, key := range []string{c.CAKey(), c.ServerKey()} {
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(key)
		before[key] = string(data)
	}
	if _, err := ensurePKI(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	for key, data := range before {
		st, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v after ensuring the PKI again, want 0600", key, st.Mode().Perm())
		}
		if now, _ := os.ReadFile(key); string(now) != data {
			t.Errorf("%s was replaced", key)
		}
	}
}
