package serve

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
	"golang.org/x/crypto/bcrypt"
)

// counting counts the requests that reach distribution's controller.
type counting struct {
	inner auth.AccessController
	n     int
}

func (c *counting) Authorized(r *http.Request, a ...auth.Access) (*auth.Grant, error) {
	c.n++
	return c.inner.Authorized(r, a...)
}

func writeHtpasswd(t testing.TB, path, user, pass string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newTestCache(t testing.TB, path string) (*credCache, *counting) {
	t.Helper()
	inner, err := auth.GetAccessController("htpasswd", map[string]any{"realm": "test", "path": path})
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counting{inner: inner}
	c, err := newCredCache(cnt, path)
	if err != nil {
		t.Fatal(err)
	}
	return c, cnt
}

func basicReq(user, pass string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	return r
}

// TestCredCache: accepted credentials are answered without distribution's
// bcrypt check while the file is unchanged and the entry fresh; refused
// ones always reach it and keep their challenge; a changed password in
// the file refuses the old one at once.
func TestCredCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeHtpasswd(t, path, "yocto", "s3cret")
	c, cnt := newTestCache(t, path)
	clock := time.Now()
	c.now = func() time.Time { return clock }

	for i := 0; i < 3; i++ {
		g, err := c.Authorized(basicReq("yocto", "s3cret"))
		if err != nil || g.User.Name != "yocto" {
			t.Fatalf("request %d: grant %+v, %v", i, g, err)
		}
	}
	if cnt.n != 1 {
		t.Errorf("distribution's controller asked %d times for one user's three requests, want 1", cnt.n)
	}

	for _, r := range []*http.Request{basicReq("yocto", "wrong"), basicReq("other", "s3cret"), basicReq("", "")} {
		_, err := c.Authorized(r)
		var ch auth.Challenge
		if !errors.As(err, &ch) {
			t.Errorf("refused credentials: %v, want a challenge", err)
			continue
		}
		w := httptest.NewRecorder()
		ch.SetHeaders(r, w)
		if w.Header().Get("WWW-Authenticate") == "" {
			t.Error("the challenge sets no WWW-Authenticate")
		}
	}
	before := cnt.n
	c.Authorized(basicReq("yocto", "wrong"))
	if cnt.n != before+1 {
		t.Error("a refused password was answered from the cache")
	}

	// The password changes: the old one is refused, the new one accepted.
	writeHtpasswd(t, path, "yocto", "n3w")
	future := clock.Add(time.Second)
	os.Chtimes(path, future, future)
	if _, err := c.Authorized(basicReq("yocto", "s3cret")); err == nil {
		t.Error("the old password is still accepted after the file changed")
	}
	if _, err := c.Authorized(basicReq("yocto", "n3w")); err != nil {
		t.Errorf("the new password: %v", err)
	}

	// After the TTL the controller is asked again.
	before = cnt.n
	clock = clock.Add(authCacheTTL + time.Second)
	if _, err := c.Authorized(basicReq("yocto", "n3w")); err != nil {
		t.Fatal(err)
	}
	if cnt.n != before+1 {
		t.Error("an entry older than the TTL was answered from the cache")
	}
}

// TestWithAuthCache: serve runs the htpasswd section under the caching
// controller with the same options and leaves the configuration it was
// given alone.
func TestWithAuthCache(t *testing.T) {
	params := configuration.Parameters{"realm": "r", "path": "/x"}
	cfg := &configuration.Configuration{Auth: configuration.Auth{"htpasswd": params}}
	got := withAuthCache(cfg)
	if got.Auth.Type() != cachedHtpasswd || got.Auth.Parameters()["path"] != "/x" {
		t.Errorf("auth section %v", got.Auth)
	}
	if cfg.Auth.Type() != "htpasswd" {
		t.Error("the caller's configuration was changed")
	}
	none := &configuration.Configuration{}
	if withAuthCache(none) != none {
		t.Error("a configuration without auth was replaced")
	}
}

// BenchmarkCredCache: one authorised request with distribution's
// controller alone and through the cache, at the cost the generated
// htpasswd uses.
func BenchmarkCredCache(b *testing.B) {
	path := filepath.Join(b.TempDir(), "htpasswd")
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("yocto:"+string(hash)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	c, cnt := newTestCache(b, path)
	for _, bc := range []struct {
		name string
		ac   auth.AccessController
	}{{"distribution", cnt.inner}, {"cached", c}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.ac.Authorized(basicReq("yocto", "s3cret")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
