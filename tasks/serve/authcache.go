package serve

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
)

// cachedHtpasswd is the name serve runs the htpasswd access controller
// under: distribution's own, with the credentials it accepted remembered
// for a while. distribution checks the bcrypt hash on every request, and
// a push makes dozens (a HEAD per blob, each upload, each manifest): with
// the generated cost-10 hash that made a secure push of one small image
// take seconds instead of tens of milliseconds.
const cachedHtpasswd = "ocireg-htpasswd"

// authCacheTTL is how long accepted credentials are remembered; any change
// of the htpasswd file forgets them at once.
const authCacheTTL = 5 * time.Minute

// authCacheMax bounds the credentials remembered; when full, the cache
// starts over.
const authCacheMax = 256

func init() {
	if err := auth.Register(cachedHtpasswd, newCachedHtpasswd); err != nil {
		panic(err)
	}
}

// withAuthCache returns cfg with its htpasswd access controller replaced by
// the caching one (same options); cfg itself is not changed.
func withAuthCache(cfg *configuration.Configuration) *configuration.Configuration {
	params, ok := cfg.Auth["htpasswd"]
	if !ok || len(cfg.Auth) != 1 {
		return cfg
	}
	c := *cfg
	c.Auth = configuration.Auth{cachedHtpasswd: params}
	return &c
}

// accessController is the access controller of cfg's auth section, under
// the credentials cache (withAuthCache), for the handlers serve puts in
// front of distribution's application (the referrers API, the browser);
// nil without authentication. The htpasswd file must exist (checkFiles).
func accessController(cfg *configuration.Configuration) (auth.AccessController, error) {
	a := withAuthCache(cfg).Auth
	t := a.Type()
	if t == "" || strings.EqualFold(t, "none") {
		return nil, nil
	}
	ac, err := auth.GetAccessController(t, a.Parameters())
	if err != nil {
		return nil, fmt.Errorf("configuring %s authorization: %w", t, err)
	}
	return ac, nil
}

func newCachedHtpasswd(options map[string]any) (auth.AccessController, error) {
	inner, err := auth.GetAccessController("htpasswd", options)
	if err != nil {
		return nil, err
	}
	path, _ := options["path"].(string)
	return newCredCache(inner, path)
}

// credCache answers for credentials inner accepted within authCacheTTL
// while the htpasswd file is unchanged, and asks inner otherwise. Refused
// credentials are never remembered: each wrong guess costs a bcrypt check.
// It keeps HMACs of user and password under a key of this process, not the
// passwords.
type credCache struct {
	inner auth.AccessController
	path  string
	key   []byte
	now   func() time.Time

	mu   sync.Mutex
	seen map[[sha256.Size]byte]accepted
}

type accepted struct {
	until time.Time
	file  fileStamp
}

// fileStamp identifies one version of the htpasswd file.
type fileStamp struct {
	mtime time.Time
	size  int64
	ino   uint64
}

func newCredCache(inner auth.AccessController, path string) (*credCache, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &credCache{inner: inner, path: path, key: key, now: time.Now, seen: map[[sha256.Size]byte]accepted{}}, nil
}

func (c *credCache) Authorized(req *http.Request, access ...auth.Access) (*auth.Grant, error) {
	user, pass, ok := req.BasicAuth()
	stamp, statOK := c.stamp()
	if !ok || !statOK {
		return c.inner.Authorized(req, access...)
	}
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var id [sha256.Size]byte
	copy(id[:], mac.Sum(nil))
	now := c.now()
	c.mu.Lock()
	a, hit := c.seen[id]
	c.mu.Unlock()
	if hit && now.Before(a.until) && a.file == stamp {
		return &auth.Grant{User: auth.UserInfo{Name: user}}, nil
	}
	grant, err := c.inner.Authorized(req, access...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.seen) >= authCacheMax {
		c.seen = map[[sha256.Size]byte]accepted{}
	}
	c.seen[id] = accepted{until: now.Add(authCacheTTL), file: stamp}
	c.mu.Unlock()
	return grant, nil
}

func (c *credCache) stamp() (fileStamp, bool) {
	fi, err := os.Stat(c.path)
	if err != nil {
		return fileStamp{}, false
	}
	s := fileStamp{mtime: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s, true
}
