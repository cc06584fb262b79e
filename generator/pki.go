package generator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// PKIReport says what ensurePKI did, and where the PKI is.
type PKIReport struct {
	Dir        string `json:"dir"`
	CACert     string `json:"ca_cert"`
	ServerCert string `json:"server_cert"`
	// CreatedCA is true when a new CA (and server certificate) was made.
	CreatedCA bool `json:"created_ca"`
	// CreatedServer is true when a new server certificate was made.
	CreatedServer bool `json:"created_server"`
	// Missing lists required SANs the existing server certificate lacks.
	Missing []string `json:"missing_sans,omitempty"`
}

// ensurePKI makes sure pki/ holds a CA and a server certificate for the
// configuration. Keys are ECDSA P-256 (accepted by Docker, Podman, curl,
// OpenSSL and Go alike). Existing files are never replaced: a CA that exists
// is reused to sign a missing server certificate, and a server certificate
// that no longer covers the configured names is reported in Missing.
// Existing keys are set to mode 0600.
func ensurePKI(c *config.Config, now time.Time) (*PKIReport, error) {
	rep := &PKIReport{Dir: c.PKIDir(), CACert: c.CACert(), ServerCert: c.ServerCert()}
	if err := safefile.MkdirPrivate(c.PKIDir()); err != nil {
		return nil, err
	}
	caCertOK, caKeyOK := exists(c.CACert()), exists(c.CAKey())
	srvCertOK, srvKeyOK := exists(c.ServerCert()), exists(c.ServerKey())
	// Keys made by hand or by an older version may be readable by others.
	for _, key := range []string{c.CAKey(), c.ServerKey()} {
		if err := safefile.Tighten(key); err != nil {
			return nil, err
		}
	}

	switch {
	case caCertOK != caKeyOK:
		return nil, fmt.Errorf("incomplete CA in %s: found only one of ca.crt and ca.key; restore the missing file or remove both to create a new CA", c.PKIDir())
	case srvCertOK != srvKeyOK:
		return nil, fmt.Errorf("incomplete server certificate in %s: found only one of server.crt and server.key; restore the missing file or remove both", c.PKIDir())
	}

	var caCert *x509.Certificate
	var caKey crypto.Signer
	if !caCertOK {
		if srvCertOK {
			return nil, fmt.Errorf("%s has a server certificate but no CA; remove server.crt and server.key to create both", c.PKIDir())
		}
		var err error
		caCert, caKey, err = createCA(c, now)
		if err != nil {
			return nil, err
		}
		rep.CreatedCA = true
	}

	if srvCertOK {
		cert, err := readCert(c.ServerCert())
		if err != nil {
			return nil, err
		}
		rep.Missing = missingSANs(c, cert)
		return rep, nil
	}
	if caCert == nil {
		var err error
		if caCert, err = readCert(c.CACert()); err != nil {
			return nil, err
		}
		if caKey, err = readKey(c.CAKey()); err != nil {
			return nil, err
		}
	}
	if err := createServer(c, caCert, caKey, now); err != nil {
		return nil, err
	}
	rep.CreatedServer = true
	return rep, nil
}

func createCA(c *config.Config, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ocireg-tool registry CA", Organization: []string{"Yocto container registry"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(0, 0, c.CADays),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writeKey(c.CAKey(), key); err != nil {
		return nil, nil, err
	}
	if _, err := safefile.WriteAtomic(c.CACert(), pemBlock("CERTIFICATE", der), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func createServer(c *config.Config, ca *x509.Certificate, caKey crypto.Signer, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating server key: %w", err)
	}
	dns, ips := c.RequiredSANs()
	notAfter := now.AddDate(0, 0, c.CertDays)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: c.Host, Organization: []string{"Yocto container registry"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              dns,
		IPAddresses:           ips,
		SubjectKeyId:          keyID(&key.PublicKey),
		AuthorityKeyId:        ca.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("creating server certificate: %w", err)
	}
	if err := writeKey(c.ServerKey(), key); err != nil {
		return err
	}
	_, err = safefile.WriteAtomic(c.ServerCert(), pemBlock("CERTIFICATE", der), 0o644)
	return err
}

// missingSANs lists the required names cert does not cover.
func missingSANs(c *config.Config, cert *x509.Certificate) []string {
	var out []string
	dns, ips := c.RequiredSANs()
	for _, d := range dns {
		if cert.VerifyHostname(d) != nil {
			out = append(out, "DNS:"+d)
		}
	}
	for _, ip := range ips {
		found := false
		for _, have := range cert.IPAddresses {
			if have.Equal(ip) {
				found = true
			}
		}
		if !found {
			out = append(out, "IP:"+ip.String())
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key found", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unsupported PEM type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key cannot sign", path)
	}
	return signer, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if exists(path) {
		return fmt.Errorf("%s: %w (refusing to overwrite a key)", path, fs.ErrExist)
	}
	_, err = safefile.WriteAtomic(path, pemBlock("PRIVATE KEY", der), 0o600)
	return err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha1.Sum(der)
	return sum[:]
}
