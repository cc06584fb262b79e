package config

import (
	"os"
	"strings"
	"testing"
)

// LocalPassword names the password file when it breaks the password rule,
// and suggests starting the registry only when the file is missing.
func TestReadPasswordFile(t *testing.T) {
	c, err := FromVars(Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_STORAGE": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.LocalPassword()
	if err == nil || !strings.Contains(err.Error(), "start the registry once to create it") {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.MkdirAll(c.AuthDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		"secret\n":      "",
		"secret":        "",
		"secret  \n":    "must not start or end with white space",
		" secret\n":     "must not start or end with white space",
		"sec\nret\n":    "must be a single line",
		"secret\n\n":    "must be a single line",
		"\tsecret\r\n":  "must not start or end with white space",
		"secret\x00\n":  "must be a single line",
		"secret\r\n":    "",
		"two words\n":   "",
		"new\rline\r\n": "must be a single line",
	} {
		writeFile(t, c.PasswordFile(), body)
		pw, err := c.LocalPassword()
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", body, err)
		case want == "" && pw != strings.TrimRight(body, "\r\n"):
			t.Errorf("%q: read %q", body, pw)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.PasswordFile())):
			t.Errorf("%q: err = %v, want %q naming %s", body, err, want, c.PasswordFile())
		case want != "" && strings.Contains(err.Error(), "start the registry once"):
			t.Errorf("%q: the file exists, yet: %v", body, err)
		}
	}
}
