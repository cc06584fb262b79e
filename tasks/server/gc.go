package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/collect"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
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
	// Stopped and Restarted are the stop of the registry for the sweep and
	// its start afterwards, when the storage was too full to hold writes
	// instead (nil otherwise).
	Stopped   *StopResult  `json:"stopped,omitempty"`
	Restarted *StartResult `json:"restarted,omitempty"`
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
	why, err := cannotHold(ctx, c, d, o.Options)
	if err != nil {
		return res, err
	}
	heldAny := false
	co := collect.Options{
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
	}
	var r *collect.Result
	if why == "" {
		r, err = collect.Run(ctx, c, cfg, d, co)
		if regstore.IsFull(err) && !c.Backend.S3() && (r == nil || r.Held == nil) {
			// A full file system cannot take the gc's request to hold
			// writes, nor the registry's acknowledgement: give the space
			// back the way gc worked before it was online.
			why = "the storage is full: it cannot take the request to hold writes"
		}
	}
	if why != "" {
		r, err = collectStopped(ctx, c, cfg, d, o, co, res, why)
	}
	if r != nil {
		res.Result = *r
	}
	if err == nil && res.Removed != nil {
		o.Events.Emit(Collected{Removed: res.Removed})
	}
	return res, err
}

// collectStopped collects c's storage with its registry stopped (and
// started again afterwards, also when the collection fails), the port's
// lock held so that no start slips in.
func collectStopped(ctx context.Context, c *config.Config, cfg *configuration.Configuration, d driver.StorageDriver, o GCOptions, co collect.Options, res *GCResult, why string) (r *collect.Result, err error) {
	unlock, err := runstate.Lock(ctx, c, lockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if run := runstate.Check(c); run.Err != nil {
		return nil, run.Err
	} else if run.Pid != 0 {
		o.Events.Emit(SweepStopping{Why: why})
		if res.Stopped, err = stop(c, o.Options); err != nil {
			return nil, err
		}
		o.Events.Emit(Stopped{Stop: res.Stopped})
		defer func() {
			o.Events.Emit(Restarting{})
			started, serr := start(context.WithoutCancel(ctx), c, o.Options)
			if started != nil {
				res.Restarted = started
				o.Events.Emit(Started{Start: started})
			}
			if serr != nil {
				err = errors.Join(err, fmt.Errorf("restarting the registry after gc: %w", serr))
			}
		}()
	}
	co.NoHold = true
	return collect.Run(ctx, c, cfg, d, co)
}

// cannotHold says why the registries serving c's storage cannot hold
// their writes for a collection ("" when they can, or none runs): the
// registry this storage runs does not take part in the hold (it is not
// heartbeating: an older tool, or a storage that refuses its record), so
// it is stopped instead. A registry not started from this storage that
// answers at its URL could write during the sweep: that is an error.
func cannotHold(ctx context.Context, c *config.Config, d driver.StorageDriver, o Options) (string, error) {
	live, err := replica.List(ctx, d)
	if err != nil {
		return "", fmt.Errorf("listing the registries serving %s: %w", c.Storage, err)
	}
	switch {
	case len(live) > 0:
		return "", nil
	case runstate.Check(c).Pid != 0:
		return "it does not take part in the hold of writes", nil
	case ping(ctx, c, o.Script) == nil:
		return "", fmt.Errorf("a registry not started from %s answers at %s; stop it before garbage collection", c.Storage, c.BaseURL())
	}
	return "", nil
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
