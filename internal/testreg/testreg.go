// Package testreg serves a distribution/v3 registry in the test process
// (httptest on 127.0.0.1) with in-memory storage, optional htpasswd auth
// and optional TLS, so tests talk to a real registry without starting the
// tool.
package testreg

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Registry is a running test registry.
type Registry struct {
	Server *httptest.Server
	Host   string // 127.0.0.1:port
}

// Option configures New.
type Option func(*configuration.Configuration, testing.TB)

// WithHtpasswd requires basic auth with user and password.
func WithHtpasswd(user, password string) Option {
	return func(c *configuration.Configuration, t testing.TB) {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(f, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "test", "path": f}}
	}
}

// WithTLS serves HTTPS with the certificate and key in these PEM files
// (the Host stays host:port).
func WithTLS(certFile, keyFile string) Option {
	return func(c *configuration.Configuration, t testing.TB) {
		c.HTTP.TLS.Certificate, c.HTTP.TLS.Key = certFile, keyFile
	}
}

// WithFilesystem stores the registry's data under root (distribution's
// filesystem driver) instead of in memory: what a tool configuration's
// data directory holds.
func WithFilesystem(root string) Option {
	return func(c *configuration.Configuration, _ testing.TB) {
		c.Storage = configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
		}
	}
}

// New starts a registry that stops when the test ends.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	logrus.SetOutput(io.Discard)
	c := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory": configuration.Parameters{},
			"delete":   configuration.Parameters{"enabled": true},
		},
	}
	c.Log.Level = "error"
	c.Log.AccessLog.Disabled = true
	c.HTTP.Secret = "test-secret"
	c.Catalog.MaxEntries = 1000 // what configuration.Parse defaults to
	for _, o := range opts {
		o(c, t)
	}
	app := handlers.NewApp(context.Background(), c)
	srv := httptest.NewUnstartedServer(app)
	if c.HTTP.TLS.Certificate == "" {
		srv.Start()
	} else {
		cert, err := tls.LoadX509KeyPair(c.HTTP.TLS.Certificate, c.HTTP.TLS.Key)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	return &Registry{Server: srv, Host: srv.Listener.Addr().String()}
}

// App builds distribution's application on in-memory storage (delete
// enabled) without serving it, and returns it with its storage driver as
// regstore.Capture hands it over: what serve puts the referrers API and
// the browser in front of.
func App(t testing.TB) (*handlers.App, driver.StorageDriver) {
	t.Helper()
	logrus.SetOutput(io.Discard)
	cfg := &configuration.Configuration{Storage: configuration.Storage{
		"inmemory": configuration.Parameters{},
		"delete":   configuration.Parameters{"enabled": true},
	}}
	cfg.HTTP.Secret = "test"
	cfg.Log.AccessLog.Disabled = true
	var capture regstore.Capture
	app := handlers.NewApp(context.Background(), capture.Configure(cfg))
	if err := capture.Check(); err != nil {
		t.Fatal(err)
	}
	return app, capture.Driver()
}

// ReadImage reads what a pull reads of img: its config and every layer,
// each checked against its digest (go-containerregistry checks a layer
// when its reader closes).
func ReadImage(img v1.Image) error {
	if _, err := img.RawConfigFile(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
	}
	return nil
}
