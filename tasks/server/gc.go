package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
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
}

// GCReport sums up what a collection found or removed.
type GCReport struct {
	Blobs     []Removal `json:"blobs"`     // blob data
	Manifests []Removal `json:"manifests"` // manifest revisions of untagged manifests
	Other     []Removal `json:"other"`     // layer links and tag index entries
	Uploads   []Removal `json:"uploads"`   // partial uploads of interrupted or failed pushes
	Bytes     int64     `json:"bytes"`     // total size of everything above
	Removed   bool      `json:"removed"`   // false for a dry run

	// paths lists every removal in the order the sweep made it, so a dry
	// run taken while nothing can write can be carried out as recorded.
	paths []string
}

// Removal is one storage path a collection removes.
type Removal struct {
	Path  string `json:"path"`
	Name  string `json:"name"` // digest, or repo@digest for manifests
	Bytes int64  `json:"bytes"`
}

// MarshalJSON writes every list as an array, also an empty one.
func (r GCReport) MarshalJSON() ([]byte, error) {
	type plain GCReport
	p := plain(r)
	for _, l := range []*[]Removal{&p.Blobs, &p.Manifests, &p.Other, &p.Uploads} {
		if *l == nil {
			*l = []Removal{}
		}
	}
	return json.Marshal(p)
}

// Empty reports whether the collection has nothing to remove.
func (r *GCReport) Empty() bool {
	return len(r.Blobs) == 0 && len(r.Manifests) == 0 && len(r.Other) == 0 && len(r.Uploads) == 0
}

// GCResult says what GC found, removed, stopped and started.
type GCResult struct {
	// Where is the storage collected: a directory, or "<type> storage".
	Where          string `json:"storage"`
	DeleteUntagged bool   `json:"delete_untagged"`
	// DryRun is what the dry run found.
	DryRun *GCReport `json:"dry_run"`
	// UntaggedKept counts the manifests no tag references that were kept,
	// and UntaggedBytes what --delete-untagged would free on top (only
	// reported when the dry run is all that may happen).
	UntaggedKept  int   `json:"untagged_kept,omitempty"`
	UntaggedBytes int64 `json:"untagged_bytes,omitempty"`
	// Removed is what was removed (nil when nothing was).
	Removed *GCReport `json:"removed,omitempty"`
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
	cfg, where, err := gcStorage(c)
	if err != nil {
		return nil, err
	}
	res = &GCResult{Where: where, DeleteUntagged: o.DeleteUntagged}
	defer func() { recordGC(c, res, err) }()
	var restart func() error
	// With --yes the registry is stopped before the dry run: nothing can
	// write between it and the removal, so the removal carries out exactly
	// the recorded dry run instead of marking everything again.
	if o.Yes {
		if restart, err = stopForSweep(ctx, c, cfg, o, res); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, restart()) }()
	}
	if res.DryRun, err = sweep(ctx, cfg, o.DeleteUntagged, true); err != nil {
		return res, err
	}
	if !o.DeleteUntagged && !o.Yes {
		res.UntaggedKept, res.UntaggedBytes = untaggedKept(ctx, cfg, res.DryRun)
	}
	o.Events.Emit(DryRun{Where: where, Report: res.DryRun, UntaggedKept: res.UntaggedKept, UntaggedBytes: res.UntaggedBytes})
	switch {
	case res.DryRun.Empty():
		return res, nil
	case o.Yes:
		res.Removed, err = carryOut(ctx, cfg, res.DryRun)
	case o.Confirm == nil:
		return res, nil
	case !o.Confirm():
		res.Declined = true
		return res, nil
	default:
		if restart, err = stopForSweep(ctx, c, cfg, o, res); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, restart()) }()
		// The registry ran during the dry run: mark again.
		res.Removed, err = sweep(ctx, cfg, o.DeleteUntagged, false)
	}
	if err != nil {
		return res, err
	}
	// A redis blob descriptor cache would go on answering for the removed
	// blobs (before the registry starts again, or writes resume).
	if err := purgeRedisCache(ctx, cfg); err != nil {
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

// gcStorage loads the registry configuration (writing it when missing)
// and says where its storage is, for the report.
func gcStorage(c *config.Config) (*configuration.Configuration, string, error) {
	if _, err := regconfig.EnsureFile(c); err != nil {
		return nil, "", err
	}
	cfg, _, err := regconfig.Load(c)
	if err != nil {
		return nil, "", err
	}
	// distribution logs every deletion through logrus; the result says it
	// better.
	logrus.SetOutput(io.Discard)
	where := c.DataDir()
	if c.Backend.S3() {
		where = c.Backend.String()
	} else if cfg.Storage.Type() != "filesystem" {
		where = cfg.Storage.Type() + " storage"
	} else if root, ok := cfg.Storage.Parameters()["rootdirectory"].(string); ok {
		where = root
	}
	return cfg, where, nil
}

// untaggedKept counts the manifests that no tag references and a plain
// collection keeps, and the bytes --delete-untagged would free on top of
// dry. Deleting a tag that another tag's index still lists leaves its
// manifest (untagged) behind, and a plain mark and sweep keeps everything
// a stored manifest references.
func untaggedKept(ctx context.Context, cfg *configuration.Configuration, dry *GCReport) (int, int64) {
	more, err := sweep(ctx, cfg, true, true)
	if err != nil || len(more.Manifests) == 0 {
		return 0, 0
	}
	return len(more.Manifests), more.Bytes - dry.Bytes
}

// stopForSweep stops the registry of c when it runs, so nothing writes
// while gc sweeps, and returns the function that starts it again (when it
// was running). On a shared backend it holds the writes of every replica
// instead (holdWrites). It takes the port's lock and the returned function
// releases it: no start can slip in during the sweep.
func stopForSweep(ctx context.Context, c *config.Config, cfg *configuration.Configuration, o GCOptions, res *GCResult) (func() error, error) {
	if regconfig.S3(cfg) {
		// Replicas on other hosts write to it too: hold them all.
		return holdWrites(ctx, c, cfg, o)
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

// carryOut removes what a dry run recorded, in its order. It is only
// correct when nothing wrote to the storage since that dry run.
func carryOut(ctx context.Context, cfg *configuration.Configuration, dry *GCReport) (*GCReport, error) {
	d, err := factory.Create(ctx, cfg.Storage.Type(), cfg.Storage.Parameters())
	if err != nil {
		return nil, fmt.Errorf("opening %s storage: %w", cfg.Storage.Type(), err)
	}
	for _, p := range dry.paths {
		err := d.Delete(ctx, p)
		var nf driver.PathNotFoundError
		if err != nil && !errors.As(err, &nf) {
			return nil, fmt.Errorf("garbage collection: deleting %s: %w", p, err)
		}
		testhook.Pause("gc-delete")
	}
	rep := *dry
	rep.Removed = true
	return &rep, nil
}

// sweep runs distribution's MarkAndSweep over the configured storage.
// With dryRun, deletions are recorded (with their sizes) but not done,
// which gives the exact list and byte count a real run removes.
func sweep(ctx context.Context, cfg *configuration.Configuration, removeUntagged, dryRun bool) (*GCReport, error) {
	d, err := factory.Create(ctx, cfg.Storage.Type(), cfg.Storage.Parameters())
	if err != nil {
		return nil, fmt.Errorf("opening %s storage: %w", cfg.Storage.Type(), err)
	}
	rec := &recordingDriver{StorageDriver: d, dry: dryRun, rep: &GCReport{Removed: !dryRun}}
	if regconfig.S3(cfg) {
		rec.keepAfter = time.Now().Add(-sharedGCGrace())
	}
	if nothingStored(ctx, d) {
		return rec.rep, nil
	}
	reg, err := storage.NewRegistry(ctx, rec, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	// Referrers matter when untagged manifests go, or records are stored.
	_, recErr := d.Stat(ctx, referrers.Root)
	withReferrers := removeUntagged || recErr == nil
	ns := reg
	var scan map[string]*repoManifests
	if withReferrers {
		if scan, err = scanManifests(ctx, reg); err != nil {
			return nil, fmt.Errorf("garbage collection: %w", err)
		}
		ns = newGCNamespace(reg, scan)
	}
	err = storage.MarkAndSweep(ctx, rec, ns, storage.GCOpts{RemoveUntagged: removeUntagged, Quiet: true})
	if err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	if withReferrers {
		if err := rec.sweepRecords(ctx, scan); err != nil {
			return nil, fmt.Errorf("garbage collection: %w", err)
		}
	}
	if err := rec.purgeUploads(ctx); err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	return rec.rep, nil
}

// Where distribution keeps repositories and blobs in its storage.
const (
	repositoriesPath = "/docker/registry/v2/repositories"
	blobsPath        = "/docker/registry/v2/blobs"
)

// nothingStored reports whether d holds neither repositories nor blobs: a
// registry nothing was pushed to. distribution's mark phase fails on it
// (the repositories directory is missing), and its error does not say why.
func nothingStored(ctx context.Context, d driver.StorageDriver) bool {
	var nf driver.PathNotFoundError
	for _, p := range []string{repositoriesPath, blobsPath} {
		if _, err := d.Stat(ctx, p); !errors.As(err, &nf) {
			return false
		}
	}
	return true
}

// purgeUploads removes every partial upload. A push killed with the
// server, or refused by a full disk, leaves its upload behind, and
// distribution purges those only after a week; they hold the very space a
// user runs gc to get back. The real sweep runs with the registry stopped,
// so no upload can be in progress.
func (r *recordingDriver) purgeUploads(ctx context.Context) error {
	var uploads []string
	err := r.StorageDriver.Walk(ctx, repositoriesPath, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			return nil
		}
		switch path.Base(fi.Path()) {
		case "_uploads":
			children, err := r.StorageDriver.List(ctx, fi.Path())
			if err != nil {
				return err
			}
			uploads = append(uploads, children...)
			return driver.ErrSkipDir
		case "_layers", "_manifests":
			return driver.ErrSkipDir
		}
		return nil
	})
	var nf driver.PathNotFoundError
	if err != nil && !errors.As(err, &nf) {
		return err
	}
	sort.Strings(uploads)
	for _, u := range uploads {
		if err := r.Delete(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// recordingDriver notes every Delete with the size of what it removes and,
// in dry mode, does not pass it on.
type recordingDriver struct {
	driver.StorageDriver
	dry bool
	rep *GCReport
	// keepAfter, when set, keeps blob data and uploads written after it
	// (a shared backend: see gcGrace).
	keepAfter time.Time
}

// Delete records path and deletes it unless dry.
func (r *recordingDriver) Delete(ctx context.Context, path string) error {
	if r.young(ctx, path) {
		return nil
	}
	size, err := r.size(ctx, path)
	if err != nil {
		return err
	}
	if !r.dry {
		if err := r.StorageDriver.Delete(ctx, path); err != nil {
			return err
		}
		testhook.Pause("gc-delete")
	}
	rm := Removal{Path: path, Bytes: size, Name: path}
	parts := strings.Split(path, "/")
	switch {
	case strings.Contains(path, "/_uploads/") && strings.Contains(path, "/repositories/"):
		rm.Name = strings.SplitN(strings.SplitN(path, "/repositories/", 2)[1], "/_uploads/", 2)[0] + " upload " + parts[len(parts)-1]
		r.rep.Uploads = append(r.rep.Uploads, rm)
	case strings.Contains(path, "/blobs/") && len(parts) >= 3:
		rm.Name = parts[len(parts)-3] + ":" + parts[len(parts)-1]
		r.rep.Blobs = append(r.rep.Blobs, rm)
	case strings.HasPrefix(path, referrers.Root+"/"):
		rm.Name = strings.TrimPrefix(path, referrers.Root+"/")
		r.rep.Other = append(r.rep.Other, rm)
	case strings.Contains(path, "/_manifests/revisions/") && len(parts) >= 2:
		repo := strings.SplitN(strings.SplitN(path, "/repositories/", 2)[1], "/_manifests/", 2)[0]
		rm.Name = repo + "@" + parts[len(parts)-2] + ":" + parts[len(parts)-1]
		r.rep.Manifests = append(r.rep.Manifests, rm)
	default:
		r.rep.Other = append(r.rep.Other, rm)
	}
	r.rep.Bytes += size
	r.rep.paths = append(r.rep.paths, path)
	return nil
}

// size sums the sizes of the files at or under path.
func (r *recordingDriver) size(ctx context.Context, path string) (int64, error) {
	fi, err := r.StorageDriver.Stat(ctx, path)
	if err != nil {
		var nf driver.PathNotFoundError
		if errors.As(err, &nf) {
			return 0, nil
		}
		return 0, err
	}
	if !fi.IsDir() {
		return fi.Size(), nil
	}
	var total int64
	err = r.StorageDriver.Walk(ctx, path, func(fi driver.FileInfo) error {
		if !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return total, err
}
