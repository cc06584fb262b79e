package server

import (
	"context"
	"fmt"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/collect"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// GCOptions are the options of GC.
type GCOptions struct {
	Options
	// Yes removes without asking.
	Yes bool
	// DeleteUntagged also removes manifests that no tag references.
	DeleteUntagged bool
	// Confirm asks whether to remove what the dry run found (just emitted
	// as a DryRun event). nil means nobody can answer: without Yes, GC then
	// stops after the dry run.
	Confirm func() bool
	// Prepare, when set, is called before each sweep (collect.Options).
	Prepare func(ctx context.Context, d driver.StorageDriver, dryRun bool) (driver.StorageDriver, error)
}

// GCResult says what GC found and removed, and where.
type GCResult struct {
	// Where is the storage collected: a directory, or "<type> storage".
	Where string `json:"storage"`
	collect.Result
}

// GC garbage-collects the registry storage with distribution's mark and
// sweep, made aware of referrers and of pushes in flight (package
// collect). It first makes a dry run (what would be removed, and the
// bytes; emitted as DryRun); then it removes only with Yes or when
// Confirm says so. The registry is never stopped: every registry serving
// the storage holds its writes while the sweep runs, pulls go on. On
// error the result says what was done before the failure.
func GC(ctx context.Context, c *config.Config, o GCOptions) (*GCResult, error) {
	o.defaults()
	// One driver for the whole collection (the one the configuration's
	// check opened): every sweep, the hold of the registries and the
	// removal.
	cfg, d, where, err := gcStorage(c)
	if err != nil {
		return nil, err
	}
	res := &GCResult{Where: where}
	if err := foreignRegistry(ctx, c, d, o.Options); err != nil {
		return res, err
	}
	heldAny := false
	r, err := collect.Run(ctx, c, cfg, d, collect.Options{
		Yes: o.Yes, RemoveUntagged: o.DeleteUntagged, Confirm: o.Confirm, Prepare: o.Prepare,
		OnDryRun: func(r *collect.Result) {
			o.Events.Emit(DryRun{Where: where, Report: r.DryRun, UntaggedKept: r.UntaggedKept, UntaggedBytes: r.UntaggedBytes})
		},
		OnHeld: func(h *replica.Hold) {
			if heldAny = len(h.Replicas) > 0; heldAny {
				o.Events.Emit(WritesHeld{Storage: where, Registries: h.Replicas, InUse: len(h.InUse)})
			}
		},
		OnResumed: func() {
			if heldAny {
				o.Events.Emit(WritesResumed{})
			}
		},
	})
	if r != nil {
		res.Result = *r
	}
	if err == nil && res.Removed != nil {
		o.Events.Emit(Collected{Removed: res.Removed})
	}
	return res, err
}

// foreignRegistry refuses a collection of c's storage while a registry
// that does not take part in the hold (not started from this storage)
// answers at its URL: it could write during the sweep.
func foreignRegistry(ctx context.Context, c *config.Config, d driver.StorageDriver, o Options) error {
	live, err := replica.List(ctx, d)
	if err != nil {
		return fmt.Errorf("listing the registries serving %s: %w", c.Storage, err)
	}
	if len(live) > 0 || runstate.Check(c).Pid != 0 || ping(ctx, c, o.Script) != nil {
		return nil
	}
	return fmt.Errorf("a registry not started from %s answers at %s; stop it before garbage collection", c.Storage, c.BaseURL())
}

// gcStorage reads the registry configuration (writing it when missing),
// opens its storage and says where that is, for the report.
func gcStorage(c *config.Config) (*configuration.Configuration, driver.StorageDriver, string, error) {
	if _, err := regconfig.EnsureFile(c); err != nil {
		return nil, nil, "", err
	}
	cfg, d, err := regconfig.ReadStorage(c)
	if err != nil {
		return nil, nil, "", err
	}
	where := c.DataDir()
	if c.Backend.S3() {
		where = c.Backend.String()
	} else if cfg.Storage.Type() != "filesystem" {
		where = cfg.Storage.Type() + " storage"
	} else if root, ok := cfg.Storage.Parameters()["rootdirectory"].(string); ok {
		where = root
	}
	return cfg, d, where, nil
}

// WritesHeld is emitted when every registry serving the storage holds its
// writes for the sweep; InUse counts the digests pushes in flight name.
type WritesHeld struct {
	Storage    string
	Registries []string
	InUse      int
}

// WritesResumed is emitted when the registries take writes again.
type WritesResumed struct{}
