package safefile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ReadRegular reads regular files only, bounded, and never waits or reads
// without end.
func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ok, []byte("pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadRegular(ok, 1<<10); err != nil || string(b) != "pem" {
		t.Fatalf("%q %v", b, err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil || os.Truncate(big, 2<<20) != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{big, "more than the limit of 1 MiB"},
		{"/dev/zero", "a device"},
		{fifo, "a FIFO"},
		{dir, "a directory"},
		{"/proc/self/environ", "procfs"},
	} {
		err := within(t, 2*time.Second, "ReadRegular "+tc.path, func() error { _, err := ReadRegular(tc.path, 1<<20); return err })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: %v, want %q naming the file", tc.path, err, tc.want)
		}
	}
}

// ReadRegularIn follows links inside the directory and refuses links out
// of it.
func TestReadRegularIn(t *testing.T) {
	deploy := t.TempDir()
	outside := t.TempDir()
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(deploy, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(deploy, "img-20260101.spdx.json"), "{}")
	write(filepath.Join(outside, "secret"), "s3cret")
	if err := os.Mkdir(filepath.Join(deploy, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(deploy, "sub", "doc"), "sub")
	link("img-20260101.spdx.json", "img.spdx.json")                        // IMAGE_LINK_NAME link
	link(filepath.Join(deploy, "img-20260101.spdx.json"), "abs.spdx.json") // absolute, inside
	link("sub/doc", "sub.spdx.json")
	link("/proc/self/environ", "environ.spdx.json")
	link(filepath.Join(outside, "secret"), "secret.spdx.json")
	link("../"+filepath.Base(outside)+"/secret", "rel.spdx.json")
	link("/dev/zero", "zero.spdx.json")
	link("/etc/hostname", "etc.spdx.json")

	for name, want := range map[string]string{"img.spdx.json": "{}", "abs.spdx.json": "{}", "sub.spdx.json": "sub", "img-20260101.spdx.json": "{}"} {
		if b, err := ReadRegularIn(deploy, name, 1<<20); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"environ.spdx.json", "secret.spdx.json", "rel.spdx.json", "zero.spdx.json", "etc.spdx.json"} {
		b, err := ReadRegularIn(deploy, name, 1<<20)
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %q %v, want refused naming the file", name, b, err)
		}
	}
}
