package tests

import (
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// DNS rebinding (issue 25, item 6): a page whose name resolves to
// 127.0.0.1 makes the browser send requests naming that page's host; the
// registry started by the script answers them 421 on the API and the
// browser alike, and its own names as before.
func TestServerRefusesForeignHost(t *testing.T) {
	testtool.Need(t, "curl")
	e := NewEnv(t, nil)
	e.mustRun(t, 0, "start")
	base := "http://127.0.0.1:" + e.Port
	foreign := "Host: attacker.example:" + e.Port
	for _, c := range [][]string{
		{base + "/v2/_catalog"},
		{base + "/ui/"},
		{"-X", "DELETE", base + "/v2/yocto/x/manifests/latest"},
	} {
		if got := curlCode(t, append([]string{"-H", foreign}, c...)...); got != "421" {
			t.Errorf("curl -H %q %v: %s, want 421", foreign, c, got)
		}
	}
	for _, url := range []string{base + "/v2/_catalog", "http://" + e.URL + "/ui/"} {
		if got := curlCode(t, url); got != "200" {
			t.Errorf("curl %s: %s, want 200", url, got)
		}
	}
}
