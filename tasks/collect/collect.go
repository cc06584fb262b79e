// Package collect is garbage collection of a storage that registries go on
// serving: it holds the writes and push probes of every registry serving
// the storage (package replica) while it marks and sweeps (package gc),
// so pulls never stop, pushes that overlap it wait and then complete, and
// what pushes in flight still name stays. It is the one place that
// decides how a collection runs, for the gc command, prune and the
// collection a server runs by itself on an interval.
package collect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/tasks/gc"
	"github.com/ocireg-tool/ocireg-tool/tasks/redisconn"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Options are the options of Run.
type Options struct {
	// Yes removes without asking.
	Yes bool
	// RemoveUntagged also removes manifests that neither a tag nor a live
	// subject reaches (nor a push in flight).
	RemoveUntagged bool
	// Confirm asks whether to remove what the dry run found (just passed
	// to OnDryRun). nil means nobody can answer: without Yes, Run then
	// stops after the dry run.
	Confirm func() bool
	// Prepare, when set, is called before each sweep and returns the
	// storage the sweep sees: for a dry run (dryRun true) without changing
	// the storage, else with every writer held, to change it (prune
	// untags there).
	Prepare func(ctx context.Context, d driver.StorageDriver, dryRun bool) (driver.StorageDriver, error)
	// NoHold collects without holding anyone: every registry serving the
	// storage is stopped and cannot start meanwhile (the caller holds the
	// port's lock), and the storage may be too full to take a request.
	NoHold bool
	// OnDryRun, OnHeld and OnResumed tell the caller how the collection
	// goes (the command renders them).
	OnDryRun  func(*Result)
	OnHeld    func(*replica.Hold)
	OnResumed func()
}

// Result says what a collection found and removed.
type Result struct {
	RemoveUntagged bool `json:"delete_untagged"`
	// DryRun is what the dry run found.
	DryRun *gc.Report `json:"dry_run"`
	// UntaggedKept counts the manifests no tag references that were kept,
	// and UntaggedBytes what removing them would free on top (only
	// reported when the dry run is all that may happen).
	UntaggedKept  int   `json:"untagged_kept,omitempty"`
	UntaggedBytes int64 `json:"untagged_bytes,omitempty"`
	// Removed is what was removed (nil when nothing was).
	Removed *gc.Report `json:"removed,omitempty"`
	// Declined is true when the question was answered no.
	Declined bool `json:"declined,omitempty"`
	// Held are the registries that held their writes for the sweep, and
	// InUse the digests that pushes in flight on them named and that
	// stayed for that reason.
	Held  []string `json:"held,omitempty"`
	InUse int      `json:"in_use,omitempty"`
}

// DryRunOnly reports whether Run stopped after a dry run that found
// something because nobody could answer and Yes was not given.
func (r *Result) DryRunOnly() bool {
	return r.DryRun != nil && !r.DryRun.Empty() && r.Removed == nil && !r.Declined
}

// Run collects the storage d of configuration cfg (c's) with every
// registry serving it holding its writes during the sweep. It first makes
// a dry run; then it removes only with Yes or when Confirm says so. With
// Yes the hold comes first and the removal carries out exactly the dry
// run (nothing can write in between); after a question, it marks again.
// The last collection is recorded for the registry browser. On error the
// result says what was done before the failure.
func Run(ctx context.Context, c *config.Config, cfg *configuration.Configuration, d driver.StorageDriver, o Options) (res *Result, err error) {
	res = &Result{RemoveUntagged: o.RemoveUntagged}
	defer func() { record(c, res, err) }()
	var inUse map[digest.Digest]bool
	var uploads map[string]bool
	// sweep sweeps the storage Prepare returns for dryRun (d without it).
	sweep := func(dryRun bool) (*gc.Report, error) {
		sd := d
		if o.Prepare != nil {
			var err error
			if sd, err = o.Prepare(ctx, d, dryRun); err != nil {
				return nil, err
			}
		}
		return gc.Sweep(ctx, sd, gc.Options{RemoveUntagged: o.RemoveUntagged, DryRun: dryRun, InUse: inUse, Uploads: uploads})
	}
	hold := func() (func() error, error) {
		if o.NoHold {
			return func() error { return nil }, nil
		}
		h, withdraw, err := replica.HoldWrites(ctx, d)
		if err != nil {
			return nil, err
		}
		res.Held, res.InUse = append([]string{}, h.Replicas...), len(h.InUse)
		inUse, uploads = map[digest.Digest]bool{}, map[string]bool{}
		for _, dg := range h.InUse {
			inUse[dg] = true
		}
		for _, id := range h.Uploads {
			uploads[id] = true
		}
		if o.OnHeld != nil {
			o.OnHeld(h)
		}
		testhook.Pause("gc-held")
		return func() error {
			// A redis blob descriptor cache would go on answering for the
			// removed blobs once writes resume.
			err := redisconn.PurgeBlobDescriptors(context.WithoutCancel(ctx), cfg)
			err = errors.Join(err, withdraw())
			if o.OnResumed != nil {
				o.OnResumed()
			}
			return err
		}, nil
	}
	if o.Yes {
		resume, herr := hold()
		if herr != nil {
			return res, herr
		}
		defer func() { err = errors.Join(err, resume()) }()
	}
	if res.DryRun, err = sweep(true); err != nil {
		return res, err
	}
	if !o.RemoveUntagged && !o.Yes {
		if more, err := gc.Sweep(ctx, d, gc.Options{RemoveUntagged: true, DryRun: true}); err == nil && len(more.Manifests) > 0 {
			// Deleting a tag that another tag's index still lists leaves its
			// manifest (untagged) behind, and a plain mark and sweep keeps
			// everything a stored manifest references.
			res.UntaggedKept, res.UntaggedBytes = len(more.Manifests), more.Bytes-res.DryRun.Bytes
		}
	}
	if o.OnDryRun != nil {
		o.OnDryRun(res)
	}
	switch {
	case res.DryRun.Empty() && o.Prepare == nil:
		// (With Prepare, the removal has a change of its own to make.)
		return res, nil
	case o.Yes:
		// Every writer is held since before the dry run: make Prepare's
		// change, then remove exactly what the dry run recorded.
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
		resume, herr := hold()
		if herr != nil {
			return res, herr
		}
		defer func() { err = errors.Join(err, resume()) }()
		// Registries wrote during the dry run: mark again.
		res.Removed, err = sweep(false)
	}
	if err != nil {
		return res, fmt.Errorf("garbage collection: %w", err)
	}
	if res.Removed != nil || res.DryRun.Empty() {
		// For the registries collecting by themselves: one is enough per
		// interval (advisory; a storage that cannot take it collects again).
		_ = replica.MarkCollected(ctx, d)
	}
	return res, nil
}

// record keeps what this collection did for the registry browser
// (last-gc.json in the storage). The record is advisory: a storage
// directory that cannot take it loses only the record, never the gc.
func record(c *config.Config, res *Result, err error) {
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
