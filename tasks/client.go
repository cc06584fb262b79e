package tasks

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
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// NotRespondingError says the registry a command needs is down.
type NotRespondingError struct {
	URL    string // scheme://host:port
	Script string
	Err    error
}

func (e *NotRespondingError) Error() string {
	return fmt.Sprintf("Registry not responding at %s\nStart it first: %s start", e.URL, e.Script)
}

func (e *NotRespondingError) Unwrap() error { return e.Err }

// WrongProtocolError says the registry answers the other protocol than
// the configuration expects (HTTP against a TLS registry, or the reverse).
type WrongProtocolError struct {
	URL string // what was tried, with its scheme
	Got string // "HTTP" or "HTTPS": what the registry speaks
}

func (e *WrongProtocolError) Error() string {
	if e.Got == "HTTPS" {
		return fmt.Sprintf("registry at %s speaks HTTPS, not HTTP: it runs in secure mode; set CONTAINER_REGISTRY_SECURE=1 (and unset CONTAINER_REGISTRY_INSECURE)", e.URL)
	}
	return fmt.Sprintf("registry at %s speaks plain HTTP, not HTTPS: it is not in secure mode; unset CONTAINER_REGISTRY_SECURE or set CONTAINER_REGISTRY_INSECURE=1", e.URL)
}

// WrongProtocol inspects the outcome of a GET /v2/ probe of the local
// registry (err, or resp whose body it may read) and returns a
// *WrongProtocolError when it shows the other protocol, else nil.
func WrongProtocol(c *generator.Config, err error, resp *http.Response) error {
	if err != nil {
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			return &WrongProtocolError{URL: BaseURL(c), Got: "HTTP"}
		}
		return nil
	}
	if resp != nil && resp.StatusCode == http.StatusBadRequest {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if strings.Contains(string(body), "HTTP request to an HTTPS server") {
			return &WrongProtocolError{URL: BaseURL(c), Got: "HTTPS"}
		}
	}
	return nil
}

// BaseURL is the local registry's URL with its scheme.
func BaseURL(c *generator.Config) string {
	return c.Scheme() + "://" + c.URL
}

// LocalRegistry is the name.Registry of the local registry.
func LocalRegistry(c *generator.Config) (name.Registry, error) {
	var opts []name.Option
	if !c.Secure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(c.URL, opts...)
}

// RepoName returns the full repository path of image in the namespace:
// "container-base" becomes "yocto/container-base"; a name with a '/' is
// taken as it is.
func RepoName(c *generator.Config, image string) string {
	if strings.Contains(image, "/") {
		return image
	}
	return c.Namespace + "/" + image
}

// LocalTransport is an HTTP transport that trusts the registry's CA in
// secure mode (in addition to the system roots).
func LocalTransport(c *generator.Config) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	if !c.Secure {
		return t, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(c.CACert())
	if err != nil {
		return nil, fmt.Errorf("reading registry CA: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate found", c.CACert())
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// LocalAuth returns the credentials of the local registry: the configured
// user and the generated (or given) password when auth is on, else none.
func LocalAuth(c *generator.Config) (authn.Authenticator, error) {
	if !c.Auth {
		return authn.Anonymous, nil
	}
	pw, err := generator.ReadPassword(c)
	if err != nil {
		return nil, err
	}
	return &authn.Basic{Username: c.Username, Password: pw}, nil
}

// LocalOptions are the remote options that reach the local registry.
func LocalOptions(ctx context.Context, c *generator.Config) ([]remote.Option, error) {
	t, err := LocalTransport(c)
	if err != nil {
		return nil, err
	}
	auth, err := LocalAuth(c)
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(t), remote.WithAuth(auth)}, nil
}

// Ping checks that the local registry answers /v2/ (with its CA and
// credentials in secure mode). script names the helper for the hint.
func Ping(ctx context.Context, c *generator.Config, script string) error {
	notResponding := func(err error) error {
		return &NotRespondingError{URL: BaseURL(c), Script: script, Err: err}
	}
	// A missing CA or password file matters only once something answers:
	// a registry that was never started has neither.
	t, caErr := LocalTransport(c)
	if caErr != nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, BaseURL(c)+"/v2/", nil)
	if err != nil {
		return err
	}
	var pwErr error
	if c.Auth {
		var pw string
		if pw, pwErr = generator.ReadPassword(c); pwErr == nil {
			req.SetBasicAuth(c.Username, pw)
		}
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if werr := WrongProtocol(c, err, resp); werr != nil {
		return werr
	}
	if err != nil {
		if caErr != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return caErr
		}
		return notResponding(err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized:
		if pwErr != nil {
			return pwErr
		}
		return fmt.Errorf("registry at %s rejected the credentials of user %q (401); check %s or CONTAINER_REGISTRY_PASSWORD", BaseURL(c), c.Username, c.PasswordFile())
	}
	return notResponding(fmt.Errorf("GET /v2/: %s", resp.Status))
}
