package deploy

import (
	"strings"
	"testing"
)

// FuzzParseName: name derivation never panics, and a derived name is a
// non-empty prefix of the directory name without the layout suffixes.
func FuzzParseName(f *testing.F) {
	f.Add("container-base-qemux86-64.rootfs-20260108123456.rootfs-oci", "qemux86-64")
	f.Add("container-base-latest-oci", "qemuarm64")
	f.Add("app-multiarch-oci", "")
	f.Add("x-oci", "x")
	f.Add("-oci", "")
	f.Add("a.rootfs-20260108-123456-oci", "m")
	f.Fuzz(func(t *testing.T, base, machine string) {
		name, stamp, _, ok := ParseName(base, machine)
		if !ok {
			return
		}
		if name == "" {
			t.Fatalf("ParseName(%q, %q) = empty name, ok", base, machine)
		}
		if !strings.HasSuffix(base, "-oci") || !strings.HasPrefix(base, name) {
			t.Fatalf("ParseName(%q, %q) = %q: not a prefix of an -oci name", base, machine, name)
		}
		if stamp != "" && strings.Trim(stamp, "0123456789") != "" {
			t.Fatalf("ParseName(%q, %q): stamp %q is not digits", base, machine, stamp)
		}
	})
}
