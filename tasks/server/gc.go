package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/gc"
	"github.com/ocireg-tool/ocireg-tool/tasks/redisconn"
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
	// Prepare, when set, is called before each sweep with the storage
	// driver and returns the one to sweep: for a dry run (dryRun true) a
	// view, which must not write; for the removal (dryRun false, called
	// while nothing else can write) the storage itself, after any change
	// of its own (prune removes its tags there).
	Prepare func(ctx context.Context, d driver.StorageDriver, dryRun bool) (driver.StorageDriver, error)
}

// GCResult says what GC found, removed, stopped and started.
type GCResult struct {
	// Where is the storage collected: a directory, or "<type> storage".
	Where          string `json:"storage"`
	DeleteUntagged bool   `json:"delete_untagged"`
	// DryRun is what the dry run found.
	DryRun *gc.Report `json:"dry_run"`
	// UntaggedKept counts the manifests no tag references that were kept,
	// and UntaggedBytes what --delete-untagged would free on top (only
	// reported when the dry run is all that may happen).
	UntaggedKept  int   `json:"untagged_kept,omitempty"`
	UntaggedBytes int64 `json:"untagged_bytes,omitempty"`
	// Removed is what was removed (nil when nothing was).
	Removed *gc.Report `json:"removed,omitempty"`
	// Declined is true when the question was answered no.
	Declined bool `json:"declined,omitempty"`
	// Stopped is the stop of the running registry for the sweep, and
	// Restarted its start afterwards (nil when it was not running).
	Stopped   *StopResult  `json:"stopped,omitempty"`
	Restarted *StartResult `json:"restarted,omitempty"`
}

// DryRunOnly reports whether GC stopped after a dry run that found
// something because nobody could answer and Yes was not given.
func (r *GCResult) DryRunOnly() bool {
	return r.DryRun != nil && !r.DryRun.Empty() && r.Removed == nil && !r.Declined
}

// GC garbage-collects the registry storage with distribution's mark and
// sweep. It first makes a dry run (what would be removed, and the bytes;
// emitted as DryRun); then it removes only with Yes or when Confirm says
// so. The sweep never runs while the registry can write: a running
// registry is stopped first and started again afterwards, also when the
// sweep fails. On error the result says what was done before the failure.
func GC(ctx context.Context, c *config.Config, o GCOptions) (res *GCResult, err error) {
	o.defaults()
	// One driver for the whole collection (the one the configuration's
	// check opened): every sweep, the hold of the replicas and the removal.
	cfg, d, where, err := gcStorage(c)
	if err != nil {
		return nil, err
	}
	sweep := func(removeUntagged, dryRun bool) (*gc.Report, error) {
		opts := gc.Options{RemoveUntagged: removeUntagged, DryRun: dryRun}
		if regconfig.S3(cfg) {
			opts.KeepAfter = time.Now().Add(-gc.SharedGrace())
		}
		sd := d
		if o.Prepare != nil {
			var err error
			if sd, err = o.Prepare(ctx, d, dryRun); err != nil {
				return nil, err
			}
		}
		return gc.Sweep(ctx, sd, opts)
	}
	res = &GCResult{Where: where, DeleteUntagged: o.DeleteUntagged}
	defer func() { recordGC(c, res, err) }()
	var restart func() error
	// With --yes the registry is stopped before the dry run: nothing can
	// write between it and the removal, so the removal carries out exactly
	// the recorded dry run instead of marking everything again.
	if o.Yes {
		if restart, err = stopForSweep(ctx, c, cfg, d, o, res); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, restart()) }()
	}
	if res.DryRun, err = sweep(o.DeleteUntagged, true); err != nil {
		return res, err
	}
	if !o.DeleteUntagged && !o.Yes {
		if more, err := sweep(true, true); err == nil && len(more.Manifests) > 0 {
			// Deleting a tag that another tag's index still lists leaves its
			// manifest (untagged) behind, and a plain mark and sweep keeps
			// everything a stored manifest references.
			res.UntaggedKept, res.UntaggedBytes = len(more.Manifests), more.Bytes-res.DryRun.Bytes
		}
	}
	o.Events.Emit(DryRun{Where: where, Report: res.DryRun, UntaggedKept: res.UntaggedKept, UntaggedBytes: res.UntaggedBytes})
	switch {
	case res.DryRun.Empty() && o.Prepare == nil:
		// (With Prepare, the removal has a change of its own to make.)
		return res, nil
	case o.Yes:
		if o.Prepare != nil {
			if _, err = o.Prepare(ctx, d, false); err != nil {
				return res, err
			}
		}
		res.Removed, err = gc.CarryOut(ctx, d, res.DryRun)
	case o.Confirm == nil:
		return res, nil
	case !o.Confirm():
		res.Declined = true
		return res, nil
	default:
		if restart, err = stopForSweep(ctx, c, cfg, d, o, res); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, restart()) }()
		// The registry ran during the dry run: mark again.
		res.Removed, err = sweep(o.DeleteUntagged, false)
	}
	if err != nil {
		return res, err
	}
	// A redis blob descriptor cache would go on answering for the removed
	// blobs (before the registry starts again, or writes resume).
	if err := redisconn.PurgeBlobDescriptors(ctx, cfg); err != nil {
		return res, err
	}
	o.Events.Emit(Collected{Removed: res.Removed})
	return res, nil
}

// recordGC keeps what this gc did for the registry browser
// (last-gc.json in the storage). The record is advisory: a storage
// directory that cannot take it loses only the record, never the gc.
func recordGC(c *config.Config, res *GCResult, err error) {
	rec := runstate.GCRecord{At: time.Now().UTC()}
	rep := res.DryRun
	if res.Removed != nil {
		rep, rec.Removed = res.Removed, true
	}
	if rep != nil {
		rec.Blobs, rec.Manifests, rec.Bytes = len(rep.Blobs), len(rep.Manifests), rep.Bytes
	}
	if err != nil {
		rec.Error = err.Error()
	}
	_ = runstate.WriteGCRecord(c, rec)
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

// stopForSweep stops the registry of c when it runs, so nothing writes
// while gc sweeps, and returns the function that starts it again (when it
// was running). On a shared backend it holds the writes of every replica
// instead (holdWrites). It takes the port's lock and the returned function
// releases it: no start can slip in during the sweep.
func stopForSweep(ctx context.Context, c *config.Config, cfg *configuration.Configuration, d driver.StorageDriver, o GCOptions, res *GCResult) (func() error, error) {
	if regconfig.S3(cfg) {
		// Replicas on other hosts write to it too: hold them all.
		return holdWrites(ctx, c, cfg, d, o)
	}
	unlock, err := runstate.Lock(ctx, c, lockWait)
	if err != nil {
		return nil, err
	}
	restart, err := stopLocked(ctx, c, o, res)
	if err != nil {
		unlock()
		return nil, err
	}
	return func() error {
		defer unlock()
		return restart()
	}, nil
}

// stopLocked is stopForSweep with the port's lock held.
func stopLocked(ctx context.Context, c *config.Config, o GCOptions, res *GCResult) (func() error, error) {
	run := runstate.Check(c)
	if run.Err != nil {
		return nil, run.Err
	}
	if run.Pid == 0 && ping(ctx, c, o.Script) == nil {
		return nil, fmt.Errorf("a registry not started from %s answers at %s; stop it before garbage collection", c.Storage, c.BaseURL())
	}
	if run.Pid == 0 {
		return func() error { return nil }, nil
	}
	o.Events.Emit(SweepStopping{})
	stopped, err := stop(c, o.Options)
	if err != nil {
		return nil, err
	}
	res.Stopped = stopped
	o.Events.Emit(Stopped{Stop: stopped})
	return func() error {
		o.Events.Emit(Restarting{})
		started, err := start(context.WithoutCancel(ctx), c, o.Options)
		if started != nil {
			res.Restarted = started
			o.Events.Emit(Started{Start: started})
		}
		if err != nil {
			return fmt.Errorf("restarting the registry after gc: %w", err)
		}
		return nil
	}, nil
}

// WritesHeld is emitted when every live replica of a shared backend holds
// its writes for the sweep (instead of stopping the registry).
type WritesHeld struct {
	Backend  string
	Replicas []string
}

// WritesResumed is emitted when the replicas take writes again.
type WritesResumed struct{}

// holdWrites makes every live replica of the shared backend d hold its
// writes (replica.HoldWrites). The returned function lets them resume,
// after purging the redis blob descriptor cache, which would otherwise
// answer for removed blobs.
func holdWrites(ctx context.Context, c *config.Config, cfg *configuration.Configuration, d driver.StorageDriver, o GCOptions) (func() error, error) {
	ids, withdraw, err := replica.HoldWrites(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Backend, err)
	}
	o.Events.Emit(WritesHeld{Backend: c.Backend.String(), Replicas: ids})
	return func() error {
		err := redisconn.PurgeBlobDescriptors(context.WithoutCancel(ctx), cfg)
		err = errors.Join(err, withdraw())
		o.Events.Emit(WritesResumed{})
		return err
	}, nil
}
