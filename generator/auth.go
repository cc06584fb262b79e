package generator

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
	"golang.org/x/crypto/bcrypt"
)

// AuthReport says where the password came from, what changed, and where
// the credentials are.
type AuthReport struct {
	Dir          string `json:"dir"`
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
	// Source is "environment", "existing file" or "generated".
	Source  string `json:"password_source"`
	Changed bool   `json:"changed"`
}

// ensureAuth writes auth/htpasswd (bcrypt) and auth/password (0600) for the
// configured user. The password is CONTAINER_REGISTRY_PASSWORD, else the
// existing password file, else a new random one. Files whose content already
// matches are left alone.
func ensureAuth(c *config.Config) (*AuthReport, error) {
	if err := safefile.MkdirPrivate(c.AuthDir()); err != nil {
		return nil, err
	}
	rep := &AuthReport{Dir: c.AuthDir(), User: c.Username, PasswordFile: c.PasswordFile()}
	password := c.Password
	switch {
	case password != "":
		rep.Source = "environment"
	default:
		stored, err := config.ReadPasswordFile(c.PasswordFile())
		switch {
		case err == nil && stored != "":
			password = stored
			rep.Source = "existing file"
		case err != nil && !os.IsNotExist(err):
			return nil, err
		default:
			password = randomPassword(24)
			rep.Source = "generated"
		}
	}
	changed, err := safefile.WriteAtomic(c.PasswordFile(), []byte(password+"\n"), 0o600)
	if err != nil {
		return nil, err
	}
	rep.Changed = changed
	if htpasswdMatches(c.HtpasswdFile(), c.Username, password) {
		if err := os.Chmod(c.HtpasswdFile(), 0o600); err != nil {
			return nil, err
		}
		return rep, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("hashing password: %w", err)
	}
	if _, err := safefile.WriteAtomic(c.HtpasswdFile(), []byte(c.Username+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, err
	}
	rep.Changed = true
	return rep, nil
}

// htpasswdMatches reports whether file holds exactly one entry, for user,
// whose hash matches password.
func htpasswdMatches(file, user, password string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	ok := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		n++
		u, h, found := strings.Cut(line, ":")
		if found && u == user && bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil {
			ok = true
		}
	}
	return ok && n == 1
}

const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

func randomPassword(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = passwordAlphabet[k.Int64()]
	}
	return string(b)
}
