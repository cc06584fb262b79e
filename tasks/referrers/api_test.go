package referrers

import "testing"

// Only a last component after a valid repository name makes a route: a
// repository may itself be called "referrers" or "manifests".
func TestCutRoute(t *testing.T) {
	for _, c := range []struct {
		rest, sep, name, last string
		ok                    bool
	}{
		{"yocto/app/referrers/sha256:abc", "/referrers/", "yocto/app", "sha256:abc", true},
		{"yocto/referrers/referrers/x", "/referrers/", "yocto/referrers", "x", true},
		{"yocto/app/referrers/manifests/latest", "/referrers/", "", "", false},
		{"yocto/app/referrers/manifests/latest", "/manifests/", "yocto/app/referrers", "latest", true},
		{"referrers/sha256:abc", "/referrers/", "", "", false},
		{"Bad_Name/referrers/sha256:abc", "/referrers/", "", "", false},
		{"yocto/app/referrers/", "/referrers/", "", "", false},
	} {
		name, last, ok := cutRoute(c.rest, c.sep)
		if name != c.name || last != c.last || ok != c.ok {
			t.Errorf("cutRoute(%q, %q) = %q, %q, %v; want %q, %q, %v", c.rest, c.sep, name, last, ok, c.name, c.last, c.ok)
		}
	}
}
