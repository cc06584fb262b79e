// Package safefile owns how the tool touches files by name: it writes
// files others read atomically (a temporary file and a rename) with the
// mode it means (WriteAtomic); it writes a file a user named as a shell
// redirection would, never replacing a device, link or FIFO and never
// reading the old content (WriteUserFile); and it reads files whose
// content it takes in, regular files only and bounded (ReadRegular,
// ReadRegularIn).
package safefile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteAtomic writes data to path through a temporary file and a rename,
// so readers never see a half-written file. When path already holds exactly
// data with the same mode, nothing is written and the mtime stays. It reports
// whether the file changed.
func WriteAtomic(path string, data []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == mode.Perm() {
			return false, nil
		}
		return true, os.Chmod(path, mode)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	return true, nil
}

// MkdirPrivate creates dir (and parents) and forces mode 0700 on it whatever
// the umask.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("setting mode of %s: %w", dir, err)
	}
	return nil
}

// Tighten sets an existing regular file that holds a secret to mode 0600
// (a key made by hand or by an older version may be readable by others);
// a missing file is left alone.
func Tighten(path string) error {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() == 0o600 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("setting mode of %s: %w", path, err)
	}
	return nil
}
