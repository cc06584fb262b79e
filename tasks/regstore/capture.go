package regstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	middleware "github.com/distribution/distribution/v3/registry/middleware/registry"
	"github.com/distribution/distribution/v3/registry/storage/driver"
)

// captureMiddleware is the registry middleware through which distribution
// hands a Capture its application's namespace and storage driver.
const captureMiddleware = "ocireg-capture"

func init() {
	if err := middleware.Register(captureMiddleware, capture); err != nil {
		panic(err)
	}
}

// Capture receives the namespace and the storage driver (after every
// storage middleware) of a distribution application while it is built, so
// that what runs beside the application (the referrers records, the
// registry browser) reads and writes exactly what it does. It is the only
// way the tool reaches into the application.
type Capture struct {
	ns    distribution.Namespace
	d     driver.StorageDriver
	wraps []func(distribution.Namespace, driver.StorageDriver) distribution.Namespace
}

// Wrap has f wrap the application's namespace (f is also told the storage
// driver); call it before Configure.
func (c *Capture) Wrap(f func(distribution.Namespace, driver.StorageDriver) distribution.Namespace) {
	c.wraps = append(c.wraps, f)
}

// Configure returns a copy of cfg whose registry middleware hands the
// application over to c: build the application from it.
func (c *Capture) Configure(cfg *configuration.Configuration) *configuration.Configuration {
	out := *cfg
	out.Middleware = maps.Clone(cfg.Middleware)
	if out.Middleware == nil {
		out.Middleware = map[string][]configuration.Middleware{}
	}
	out.Middleware["registry"] = append(slices.Clone(cfg.Middleware["registry"]),
		configuration.Middleware{Name: captureMiddleware, Options: configuration.Parameters{"capture": c}})
	return &out
}

// Driver is the application's storage driver (nil before it is built).
func (c *Capture) Driver() driver.StorageDriver { return c.d }

// Namespace is the application's namespace below the wraps (nil before it
// is built).
func (c *Capture) Namespace() distribution.Namespace { return c.ns }

// Check fails when the application was not built from Configure's
// configuration.
func (c *Capture) Check() error {
	if c.d == nil || c.ns == nil {
		return errors.New("the registry application was built without the capture middleware")
	}
	return nil
}

// capture is the middleware's constructor: distribution calls it while
// building the application.
func capture(_ context.Context, ns distribution.Namespace, d driver.StorageDriver, opts map[string]any) (distribution.Namespace, error) {
	c, ok := opts["capture"].(*Capture)
	if !ok || c == nil {
		return nil, fmt.Errorf("registry middleware %s: no capture in its options", captureMiddleware)
	}
	c.ns, c.d = ns, d
	for _, f := range c.wraps {
		ns = f(ns, d)
	}
	return ns, nil
}
