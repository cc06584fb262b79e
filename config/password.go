package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LocalPassword returns the password the local registry expects: the
// environment's, else the password file's.
func (c *Config) LocalPassword() (string, error) {
	if c.Password != "" {
		return c.Password, nil
	}
	pw, err := ReadPasswordFile(c.PasswordFile())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("registry password: %w (start the registry once to create it, or set CONTAINER_REGISTRY_PASSWORD)", err)
	case err != nil:
		return "", fmt.Errorf("registry password: %w", err)
	}
	return pw, nil
}

// ReadPasswordFile reads a password file as the generator writes it: the
// password and one newline. The password obeys CheckPassword, the
// same rule as CONTAINER_REGISTRY_PASSWORD, so what is written is what is
// read back.
func ReadPasswordFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if err := CheckPassword(pw); err != nil {
		return "", fmt.Errorf("password file %s: %w", path, err)
	}
	return pw, nil
}
