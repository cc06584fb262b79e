// Package registry is the one way every command reaches a registry. A
// Target is built once from the configuration and the resolved credentials:
// it holds the scheme (config.Scheme: https in secure mode, http otherwise,
// whatever the host name), the TLS roots (the registry's CA in secure mode),
// the authenticator, the name and remote options and one shared HTTP
// transport. Ping and the listing calls return the typed errors below.
// Nothing else builds a name.Registry, a transport or credentials for the
// local registry.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
)

// Target is one registry and everything needed to speak to it.
type Target struct {
	Config   *config.Config
	Registry name.Registry
	// Transport is shared by every request of the run (keep-alive,
	// parallel HEADs); it trusts the registry's CA in secure mode.
	Transport http.RoundTripper
	Auth      authn.Authenticator
	// AuthSource says where Auth comes from ("" when anonymous).
	AuthSource string
	// Script names the helper script in hints ("start it first").
	Script string
	// local is true when Auth is the local registry's own user.
	local bool

	// setupErr is a missing CA or password file: it matters only once the
	// registry answers (a registry never started has neither).
	setupErr error

	// authed is the authenticated transport a successful Ping set up
	// (Authorized); nil before.
	authed   http.RoundTripper
	authedMu sync.Mutex
}

// WithTransport returns a copy of t whose requests go through rt (which
// wraps t.Transport, e.g. to count what is sent), without the
// authenticated transport t's Ping set up: the copy pings through rt.
func (t *Target) WithTransport(rt http.RoundTripper) *Target {
	return &Target{Config: t.Config, Registry: t.Registry, Transport: rt, Auth: t.Auth,
		AuthSource: t.AuthSource, Script: t.Script, local: t.local, setupErr: t.setupErr}
}

// New returns the Target for c's registry. creds are the destination
// credentials resolved from the auth flags and modes; nil or anonymous
// means the local registry's own when it requires them.
func New(c *config.Config, script string, creds *regauth.Resolved) (*Target, error) {
	var opts []name.Option
	if c.Scheme() == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(c.URL, opts...) // the one place the scheme meets a name
	if err != nil {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_URL %q: %w", c.URL, err)
	}
	t := &Target{Config: c, Registry: reg, Script: script, Auth: authn.Anonymous}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 16
	if c.Secure {
		pool, err := caPool(c.CACert())
		if err != nil {
			t.setupErr = err
		} else {
			base.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	t.Transport = LimitAnswers(&noWriteRedirects{base: base})
	switch {
	case creds != nil && creds.Auth != nil && !creds.Anonymous():
		t.Auth, t.AuthSource = creds.Auth, creds.Source
	case c.Auth:
		pw, err := c.LocalPassword()
		if err != nil {
			if t.setupErr == nil {
				t.setupErr = err
			}
			break
		}
		t.Auth, t.local = &authn.Basic{Username: c.Username, Password: pw}, true
		t.AuthSource = fmt.Sprintf("the local registry (user %s, %s)", c.Username, c.PasswordFile())
	}
	return t, nil
}

func caPool(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading registry CA: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate found", file)
	}
	return pool, nil
}

// URL is the registry's base URL with its scheme.
func (t *Target) URL() string { return t.Config.BaseURL() }

// Options are the remote options of every ggcr call (the shared
// transport, the credentials, the retry policy); extra ones apply on top
// (a later option wins).
func (t *Target) Options(ctx context.Context, extra ...remote.Option) []remote.Option {
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithTransport(t.Transport), remote.WithAuth(t.Auth)}, retryOptions()...)
	return append(opts, extra...)
}

// Repo returns the repository of image in the registry: "container-base"
// becomes "<namespace>/container-base"; a name with a '/' is taken as it
// is. The name must follow the distribution grammar (imageref).
func (t *Target) Repo(image string) (name.Repository, error) {
	full := RepoName(t.Config, image)
	if err := imageref.ValidateRepository(full); err != nil {
		return name.Repository{}, err
	}
	return name.NewRepository(t.Registry.RegistryStr()+"/"+full, t.nameOptions()...)
}

// Tag returns the reference image:tag in the registry (see Repo); the tag
// must follow the distribution grammar too.
func (t *Target) Tag(image, tag string) (name.Tag, error) {
	full := RepoName(t.Config, image)
	if err := imageref.ValidateRepository(full); err != nil {
		return name.Tag{}, err
	}
	if err := imageref.ValidateTag(tag); err != nil {
		return name.Tag{}, err
	}
	return name.NewTag(t.Registry.RegistryStr()+"/"+full+":"+tag, t.nameOptions()...)
}

// nameOptions are the name options of every reference to the registry:
// the scheme rule and strict validation.
func (t *Target) nameOptions() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if t.Config.Scheme() == "http" {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// RepoName returns the repository path of image in c's namespace.
func RepoName(c *config.Config, image string) string {
	if strings.Contains(image, "/") {
		return image
	}
	return c.Namespace + "/" + image
}

// Ping checks that the registry answers /v2/ on its scheme and accepts the
// credentials. Errors: *NotRespondingError (down), *WrongProtocolError (it
// speaks the other protocol), *AuthError (credentials missing or refused).
func (t *Target) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: t.Transport}).Do(req)
	if werr := t.wrongProtocol(err, resp); werr != nil {
		return werr
	}
	if err != nil {
		if t.setupErr != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return t.setupErr
		}
		return &NotRespondingError{URL: t.URL(), Script: t.Script, Err: err}
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		// No credentials asked for: requests go out as they are (ggcr's
		// handshake would settle on the same after pinging again).
		inner := &registryScheme{scheme: t.Config.Scheme(), host: t.Registry.RegistryStr(), inner: newRetrying(t.Transport)}
		rt, err := transport.FromToken(t.Registry, t.Auth, transport.NewUserAgent(inner, ""), &transport.Challenge{Insecure: t.Config.Scheme() == "http"}, &transport.Token{})
		if err != nil {
			return err
		}
		t.setAuthorized(rt)
		return nil
	case resp.StatusCode != http.StatusUnauthorized:
		return &NotRespondingError{URL: t.URL(), Script: t.Script, Err: fmt.Errorf("GET /v2/: %s", resp.Status)}
	case t.setupErr != nil:
		return t.setupErr
	case t.Auth == authn.Anonymous:
		return &AuthError{Registry: t.Config.URL, Err: fmt.Errorf("%s", resp.Status)}
	}
	// Bearer tokens are scoped to repositories: no transport for every
	// repository then (ggcr sets one up per repository).
	bearer := strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "bearer")
	// Basic or token auth, as ggcr will do it for every later request.
	rt, err := transport.NewWithContext(ctx, t.Registry, t.Auth, newRetrying(t.Transport), []string{t.Registry.Scope(transport.PullScope)})
	if err != nil {
		return &AuthError{Registry: t.Config.URL, Source: t.AuthSource, Err: err}
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, t.URL()+"/v2/", nil)
	resp, err = (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return &NotRespondingError{URL: t.URL(), Script: t.Script, Err: err}
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		e := &AuthError{Registry: t.Config.URL, Source: t.AuthSource, Err: fmt.Errorf("%s", resp.Status)}
		if t.local {
			e.User, e.Source = t.Config.Username, t.Config.PasswordFile()+" or CONTAINER_REGISTRY_PASSWORD"
		}
		return e
	}
	if !bearer {
		t.setAuthorized(rt)
	}
	return nil
}

// registryScheme sends the requests for the registry's host with the
// scheme the configuration names. go-containerregistry spells localhost
// and loopback addresses http:// and finds out the truth by pinging,
// which a transport set up from the run's one ping must not need (a
// TLS-only registry on localhost answers http:// with 400).
type registryScheme struct {
	scheme, host string
	inner        http.RoundTripper
}

func (s *registryScheme) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == s.host && r.URL.Scheme != s.scheme {
		r = r.Clone(r.Context())
		r.URL.Scheme = s.scheme
	}
	return s.inner.RoundTrip(r)
}

func (t *Target) setAuthorized(rt http.RoundTripper) {
	t.authedMu.Lock()
	defer t.authedMu.Unlock()
	t.authed = rt
}

// Authorized returns the authenticated transport that the last successful
// Ping set up (nil before one, and for a registry that hands out bearer
// tokens, which are scoped to repositories): every later request of the
// run can go through it without pinging the registry again. It carries the retry
// policy for requests without a body, and it is a transport.Wrapper, so
// ggcr calls given it (remote.WithTransport) neither ping nor wrap it.
func (t *Target) Authorized() http.RoundTripper {
	t.authedMu.Lock()
	defer t.authedMu.Unlock()
	return t.authed
}

// wrongProtocol inspects the outcome of a GET /v2/ probe and returns a
// *WrongProtocolError when it shows the other protocol, else nil.
func (t *Target) wrongProtocol(err error, resp *http.Response) error {
	if err != nil {
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			return &WrongProtocolError{URL: t.URL(), Got: "HTTP"}
		}
		return nil
	}
	if resp != nil && resp.StatusCode == http.StatusBadRequest {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if strings.Contains(string(body), "HTTP request to an HTTPS server") {
			return &WrongProtocolError{URL: t.URL(), Got: "HTTPS"}
		}
	}
	return nil
}

// Catalog returns every repository, all pages.
func (t *Target) Catalog(ctx context.Context) ([]string, error) {
	repos, err := remote.Catalog(ctx, t.Registry, t.Options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	if repos == nil {
		repos = []string{}
	}
	return repos, nil
}

// ErrImageNotFound is returned for a repository the registry does not know.
var ErrImageNotFound = errors.New("image not found")

// Shared returns an option under which requests to any repository of the
// registry go through one authenticated transport: the one Ping set up
// (Authorized), else one set up here with one /v2/ ping
// (go-containerregistry pings once per repository otherwise), with
// the retry policy of Options; nil when the registry hands out bearer
// tokens, which are scoped to one repository.
func (t *Target) Shared(ctx context.Context) (remote.Option, error) {
	if rt := t.Authorized(); rt != nil {
		return remote.WithTransport(rt), nil // Ping set it up
	}
	inner := transport.NewRetry(t.Transport, transport.WithRetryBackoff(retryBackoff),
		transport.WithRetryStatusCodes(retryStatusCodes...), transport.WithRetryPredicate(transient))
	ch, err := transport.Ping(ctx, t.Registry, inner)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(ch.Scheme, "bearer") {
		return nil, nil
	}
	tr, err := transport.NewWithContext(ctx, t.Registry, t.Auth, inner, nil)
	if err != nil {
		return nil, err
	}
	return remote.WithTransport(tr), nil
}

// Tags returns every tag of repo, all pages; ErrImageNotFound when the
// repository does not exist. extra options come after Options' (Shared's).
func (t *Target) Tags(ctx context.Context, repo name.Repository, extra ...remote.Option) ([]string, error) {
	tags, err := remote.List(repo, t.Options(ctx, extra...)...)
	if IsNotFound(err) {
		return nil, fmt.Errorf("%s: %w", repo.RepositoryStr(), ErrImageNotFound)
	}
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}

// noWriteRedirects refuses a redirect in answer to anything but GET or
// HEAD: Go's client would follow it as a GET, so a DELETE or PUT would
// "succeed" without having happened (distribution answers 301 to a path
// with dot segments).
type noWriteRedirects struct{ base http.RoundTripper }

func (t *noWriteRedirects) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodGet || req.Method == http.MethodHead {
		return resp, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: the registry answered %s (to %s); refusing to follow a redirect of a %s", req.Method, req.URL.Path, resp.Status, resp.Header.Get("Location"), req.Method)
	}
	return resp, nil
}

// CloseIdleConnections lets the shared transport's idle connections go.
func (t *noWriteRedirects) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
