// Package sign signs what the registry serves the way cosign does and
// containers/image (podman, skopeo, CRI-O) verifies: a simple-signing
// payload naming the repository and the manifest digest, signed with an
// ECDSA P-256 key, stored as a layer of the OCI image manifest tagged
// sha256-<hex>.sig in the same repository. It owns the signing key
// (key.go: made at generate/start, or an existing cosign key), making and
// checking signatures (sign.go) and nothing else: push, import, verify,
// gc and the UI call it and render what it returns.
package sign

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// The PEM types of a cosign private key: cosign 2 writes the first and
// reads both.
const (
	privateType       = "ENCRYPTED SIGSTORE PRIVATE KEY"
	legacyPrivateType = "ENCRYPTED COSIGN PRIVATE KEY"
	publicType        = "PUBLIC KEY"
)

// Limits of what is read from files a user names: a key file (a cosign
// key is about 650 bytes), a passphrase file, and the scrypt cost an
// encrypted key may ask for (cosign writes N=2^16, r=8, p=1: 64 MiB and a
// fraction of a second; a key asking for more is refused before scrypt
// runs).
const (
	MaxKeyFile      = 64 << 10
	MaxPassFile     = 4 << 10
	maxScryptN      = 1 << 20
	maxScryptR      = 16
	maxScryptP      = 4
	passphraseBytes = 32
)

// PasswordEnv is the environment variable cosign reads a key's passphrase
// from; so does the tool for CONTAINER_REGISTRY_SIGNING_KEY when
// CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE is empty.
const PasswordEnv = "COSIGN_PASSWORD"

// KeyReport says which key signs and what EnsureKey did.
type KeyReport struct {
	// Key is the private key file, Public the public key file targets
	// install (pki/signing.pub), Fingerprint the public key's
	// (Fingerprint).
	Key         string `json:"key"`
	Public      string `json:"public_key"`
	Fingerprint string `json:"fingerprint"`
	// External is true for CONTAINER_REGISTRY_SIGNING_KEY.
	External bool `json:"external"`
	// Created is true when a new key was generated; PublicWritten when
	// signing.pub was (re)written from the private key.
	Created       bool `json:"created"`
	PublicWritten bool `json:"public_written"`
}

// EnsureKey makes sure the signing key of c exists and pki/signing.pub
// holds its public key. Without CONTAINER_REGISTRY_SIGNING_KEY the key is
// pki/signing.key (0600), encrypted as cosign encrypts it with a random
// passphrase kept in pki/signing.pass (0600), made once and never
// replaced. With it, the key is decrypted once (so a wrong passphrase
// fails here, not at the first push) and signing.pub is written from it.
func EnsureKey(c *config.Config) (*KeyReport, error) { return ensureKey(c, true) }

// ensureKey is EnsureKey; without strict, an external key whose public
// key signing.pub already holds (the key file and passphrase unchanged
// since, by their SHA-256 in pki/signing.src) is not decrypted: a push
// decrypts it only when it has something to sign.
func ensureKey(c *config.Config, strict bool) (*KeyReport, error) {
	if err := safefile.MkdirPrivate(c.PKIDir()); err != nil {
		return nil, err
	}
	rep := &KeyReport{Key: c.SigningKeyFile(), Public: c.SigningPubFile(), External: c.SigningKey != ""}
	if rep.External {
		rep.Key = c.SigningKey
	}
	var priv *ecdsa.PrivateKey
	var stamp []byte
	switch {
	case rep.External:
		data, err := safefile.ReadRegular(c.SigningKey, MaxKeyFile)
		if err != nil {
			return nil, fmt.Errorf("CONTAINER_REGISTRY_SIGNING_KEY: %w", err)
		}
		pass, err := passphrase(c)
		if err != nil {
			return nil, err
		}
		// The key file and the passphrase in use, as checked: another key
		// or passphrase is decrypted again (pki/ is 0700, the file 0600).
		h := sha256.New()
		h.Write(data)
		h.Write([]byte{0})
		h.Write(pass)
		stamp = []byte(hex.EncodeToString(h.Sum(nil)) + "\n")
		if !strict {
			if old, err := os.ReadFile(srcFile(c)); err == nil && bytes.Equal(old, stamp) {
				if pub, err := ReadPublicKey(c.SigningPubFile()); err == nil {
					rep.Fingerprint = Fingerprint(pub)
					return rep, nil
				}
			}
		}
		if priv, err = loadPrivate(c); err != nil {
			return nil, err
		}
	default:
		keyOK, passOK := exists(c.SigningKeyFile()), exists(c.SigningPassFile())
		if keyOK != passOK {
			return nil, fmt.Errorf("incomplete signing key in %s: found only one of signing.key and signing.pass; restore the missing file or remove both to create a new key (targets then need the new signing.pub)", c.PKIDir())
		}
		for _, f := range []string{c.SigningKeyFile(), c.SigningPassFile()} {
			if err := safefile.Tighten(f); err != nil {
				return nil, err
			}
		}
		if !keyOK {
			var err error
			if priv, err = createKey(c); err != nil {
				return nil, err
			}
			rep.Created = true
		} else if pub, err := ReadPublicKey(c.SigningPubFile()); err == nil {
			// The generated pair is never replaced: the public key at hand
			// is the one.
			rep.Fingerprint = Fingerprint(pub)
			return rep, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		} else if priv, err = loadPrivate(c); err != nil {
			return nil, err
		}
	}
	pemPub, err := publicPEM(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	if rep.PublicWritten, err = safefile.WriteAtomic(c.SigningPubFile(), pemPub, 0o644); err != nil {
		return nil, err
	}
	if stamp != nil {
		if _, err := safefile.WriteAtomic(srcFile(c), stamp, 0o600); err != nil {
			return nil, err
		}
	} else if err := os.Remove(srcFile(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rep.Fingerprint = Fingerprint(&priv.PublicKey)
	return rep, nil
}

// srcFile holds the SHA-256 of the external key signing.pub was written
// from and of the passphrase it was decrypted with.
func srcFile(c *config.Config) string { return filepath.Join(c.PKIDir(), "signing.src") }

// createKey writes a new pki/signing.key, its passphrase and signing.pub.
func createKey(c *config.Config) (*ecdsa.PrivateKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the signing key: %w", err)
	}
	raw := make([]byte, passphraseBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	pass := []byte(base64.RawURLEncoding.EncodeToString(raw))
	// The passphrase is 256 random bits: scrypt's cost protects a weak
	// passphrase and adds nothing here, so the lightest parameters the
	// format offers (N=2^15) keep the first signature of a push fast.
	enc, err := encryptKey(priv, pass, encrypted.Legacy)
	if err != nil {
		return nil, err
	}
	if _, err := safefile.WriteAtomic(c.SigningPassFile(), append(pass, '\n'), 0o600); err != nil {
		return nil, err
	}
	if _, err := safefile.WriteAtomic(c.SigningKeyFile(), enc, 0o600); err != nil {
		return nil, err
	}
	return priv, nil
}

// EncryptKey encodes priv as cosign writes a private key: PKCS#8,
// encrypted with scrypt (cosign's parameters, N=2^16) and NaCl secretbox
// under pass, in an "ENCRYPTED SIGSTORE PRIVATE KEY" PEM block.
func EncryptKey(priv *ecdsa.PrivateKey, pass []byte) ([]byte, error) {
	return encryptKey(priv, pass, encrypted.Standard)
}

// encryptKey is EncryptKey with the scrypt parameters of level.
func encryptKey(priv *ecdsa.PrivateKey, pass []byte, level encrypted.KDFParameterStrength) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	enc, err := encrypted.EncryptWithCustomKDFParameters(der, pass, level)
	if err != nil {
		return nil, fmt.Errorf("encrypting the signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateType, Bytes: enc}), nil
}

// DecryptKey reads a cosign private key (either PEM type) with pass. name
// says which file it is in errors.
func DecryptKey(data, pass []byte, name string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || (block.Type != privateType && block.Type != legacyPrivateType) {
		return nil, fmt.Errorf("%s: not a cosign private key (want a PEM block %q)", name, privateType)
	}
	if err := checkKDF(block.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	der, err := encrypted.Decrypt(block.Bytes, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot decrypt the key (wrong passphrase?): %w", name, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: the key is a %T; signing needs ECDSA P-256 (cosign generate-key-pair makes one)", name, k)
	}
	return ec, nil
}

// checkKDF refuses an encrypted key whose scrypt parameters would cost
// more memory or time than any cosign key does.
func checkKDF(data []byte) error {
	var head struct {
		KDF struct {
			Name   string
			Params struct{ N, R, P int }
		}
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("encrypted key: %w", err)
	}
	p := head.KDF.Params
	if head.KDF.Name != "scrypt" || p.N <= 0 || p.N > maxScryptN || p.R <= 0 || p.R > maxScryptR || p.P <= 0 || p.P > maxScryptP {
		return fmt.Errorf("encrypted key: unsupported key derivation %s N=%d r=%d p=%d (at most scrypt N=%d r=%d p=%d)", head.KDF.Name, p.N, p.R, p.P, maxScryptN, maxScryptR, maxScryptP)
	}
	return nil
}

// loadPrivate reads and decrypts c's signing key with its passphrase.
func loadPrivate(c *config.Config) (*ecdsa.PrivateKey, error) {
	path, setting := c.SigningKeyFile(), "pki/signing.key"
	if c.SigningKey != "" {
		path, setting = c.SigningKey, "CONTAINER_REGISTRY_SIGNING_KEY"
	}
	data, err := safefile.ReadRegular(path, MaxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	pass, err := passphrase(c)
	if err != nil {
		return nil, err
	}
	return DecryptKey(data, pass, path)
}

// passphrase returns the passphrase of c's signing key: signing.pass for
// the generated key; else CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE (mode
// 0600 or stricter, one line), else COSIGN_PASSWORD.
func passphrase(c *config.Config) ([]byte, error) {
	file, setting := c.SigningPasswordFile, "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE"
	if c.SigningKey == "" {
		file, setting = c.SigningPassFile(), "pki/signing.pass"
	} else if file == "" {
		if v, ok := os.LookupEnv(PasswordEnv); ok {
			return []byte(v), nil
		}
		return nil, fmt.Errorf("CONTAINER_REGISTRY_SIGNING_KEY %s is encrypted: name the file of its passphrase in CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE or set %s", c.SigningKey, PasswordEnv)
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: %s has mode %04o: it holds a secret, make it 0600 (chmod 600 %s)", setting, file, st.Mode().Perm(), file)
	}
	data, err := safefile.ReadRegular(file, MaxPassFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%s: %s holds more than one line; the passphrase is its only line", setting, file)
	}
	return []byte(s), nil
}

// ReadPublicKey reads a PEM "PUBLIC KEY" (PKIX) file holding an ECDSA
// P-256 key.
func ReadPublicKey(path string) (*ecdsa.PublicKey, error) {
	data, err := safefile.ReadRegular(path, MaxKeyFile)
	if err != nil {
		return nil, err
	}
	return ParsePublicKey(data, path)
}

// ParsePublicKey parses a PEM "PUBLIC KEY" holding an ECDSA P-256 key.
func ParsePublicKey(data []byte, name string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != publicType {
		return nil, fmt.Errorf("%s: no PEM %q block", name, publicType)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an ECDSA P-256 public key", name)
	}
	return ec, nil
}

func publicPEM(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: publicType, Bytes: der}), nil
}

// Fingerprint names a public key: "sha256:" and the hex SHA-256 of its
// PKIX DER encoding, what `openssl pkey -pubin -in signing.pub -outform
// DER | sha256sum` prints.
func Fingerprint(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Key is the key push signs with: its public half read at once, the
// private half decrypted on first use (a re-push that finds every
// signature in place never pays for scrypt).
type Key struct {
	Public      *ecdsa.PublicKey
	Fingerprint string
	// File is the private key file.
	File    string
	private func() (*ecdsa.PrivateKey, error)
}

// LoadKey returns c's signing key (EnsureKey first: a key not made yet
// is made, signing.pub brought up to date; an external key already
// checked is not decrypted until it signs).
func LoadKey(c *config.Config) (*Key, error) {
	rep, err := ensureKey(c, false)
	if err != nil {
		return nil, err
	}
	pub, err := ReadPublicKey(rep.Public)
	if err != nil {
		return nil, err
	}
	k := &Key{Public: pub, Fingerprint: Fingerprint(pub), File: rep.Key}
	k.private = sync.OnceValues(func() (*ecdsa.PrivateKey, error) {
		priv, err := loadPrivate(c)
		if err != nil {
			return nil, err
		}
		if !priv.PublicKey.Equal(pub) {
			return nil, fmt.Errorf("%s does not hold the private key of %s; remove signing.pub and run start to write it again", rep.Key, rep.Public)
		}
		return priv, nil
	})
	return k, nil
}

// NewKey is a Key of priv (tests, and keys held in memory).
func NewKey(priv *ecdsa.PrivateKey) *Key {
	return &Key{Public: &priv.PublicKey, Fingerprint: Fingerprint(&priv.PublicKey),
		private: func() (*ecdsa.PrivateKey, error) { return priv, nil }}
}

// Private returns the private key, decrypting it on first use.
func (k *Key) Private() (*ecdsa.PrivateKey, error) { return k.private() }

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
