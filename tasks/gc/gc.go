// Package gc is garbage collection as a primitive: distribution's mark and
// sweep over one storage driver, made aware of OCI 1.1 referrers (a
// referrer lives exactly while its subject does) and of the partial uploads
// a killed push leaves, with a dry run that records every removal and its
// size. It returns a Report and never decides when it may run: stopping or
// holding the registry is its caller's (package server).
package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

// Options are the options of Sweep.
type Options struct {
	// RemoveUntagged also removes manifests no tag (and no live subject)
	// reaches.
	RemoveUntagged bool
	// DryRun records every removal, with its size, without removing.
	DryRun bool
	// InUse are digests pushes in flight may still name (the replicas'
	// acknowledgements of the hold, see package replica): a manifest among
	// them is live, with everything it references (unless it is a
	// referrer: that one lives with its subject), and a blob among them
	// stays, with its layer links.
	InUse map[digest.Digest]bool
	// Uploads are the partial uploads pushes in flight have open (by id):
	// they stay, a push held between two chunks goes on after the gc.
	// Every other partial upload is garbage: a push killed, refused by a
	// full disk or gone left it behind.
	Uploads map[string]bool
}

// Report sums up what a collection found or removed.
type Report struct {
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
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	p := plain(r)
	for _, l := range []*[]Removal{&p.Blobs, &p.Manifests, &p.Other, &p.Uploads} {
		if *l == nil {
			*l = []Removal{}
		}
	}
	return json.Marshal(p)
}

// Empty reports whether the collection has nothing to remove.
func (r *Report) Empty() bool {
	return len(r.Blobs) == 0 && len(r.Manifests) == 0 && len(r.Other) == 0 && len(r.Uploads) == 0
}

// CarryOut removes from d what dry, a dry run of Sweep over d, recorded.
// It is only correct when nothing wrote to the storage since that dry run.
// The references go first (manifest revisions, tag and layer links,
// referrer records, uploads), then the blob data, each phase by
// carryOutWorkers at once: a collection cut short leaves blobs nothing
// names, never a name without its blob.
func CarryOut(ctx context.Context, d driver.StorageDriver, dry *Report) (*Report, error) {
	var refs, blobs []string
	for _, p := range dry.paths {
		if strings.HasPrefix(p, regstore.Blobs+"/") {
			blobs = append(blobs, p)
		} else {
			refs = append(refs, p)
		}
	}
	for _, phase := range [][]string{refs, blobs} {
		if err := deleteAll(ctx, d, phase); err != nil {
			return nil, err
		}
	}
	rep := *dry
	rep.Removed = true
	return &rep, nil
}

// carryOutWorkers is how many deletions CarryOut has in flight: a
// filesystem unlinks in parallel, an object store answers each DELETE
// after a round trip.
const carryOutWorkers = 8

// deleteAll deletes paths from d, carryOutWorkers at once; the first error
// stops it.
func deleteAll(ctx context.Context, d driver.StorageDriver, paths []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(carryOutWorkers, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := d.Delete(ctx, p); err != nil && !regstore.IsNotFound(err) {
					cancel(fmt.Errorf("garbage collection: deleting %s: %w", p, err))
					return
				}
				testhook.Pause("gc-delete")
			}
		}()
	}
feed:
	for _, p := range paths {
		select {
		case next <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// Sweep collects d: it marks what tags, live subjects and pushes in flight
// reach and removes the rest (see markAndSweep). With o.DryRun, removals
// are recorded (with their sizes) but not done, which gives the exact list
// and byte count a real run removes.
func Sweep(ctx context.Context, d driver.StorageDriver, o Options) (*Report, error) {
	rec := &recordingDriver{StorageDriver: d, dry: o.DryRun, rep: &Report{Removed: !o.DryRun}, uploads: o.Uploads, inUse: o.InUse}
	if nothingStored(ctx, d) {
		return rec.rep, nil
	}
	reg, err := storage.NewRegistry(ctx, d, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	scan, err := scanManifests(ctx, d, reg)
	if err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	if err := rec.markAndSweep(ctx, scan, o); err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	if _, err := d.Stat(ctx, referrers.Root); err == nil {
		if err := rec.sweepRecords(ctx, scan); err != nil {
			return nil, fmt.Errorf("garbage collection: %w", err)
		}
	}
	if err := rec.purgeUploads(ctx); err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	return rec.rep, nil
}

// nothingStored reports whether d holds neither repositories nor blobs: a
// registry nothing was pushed to. distribution's mark phase fails on it
// (the repositories directory is missing), and its error does not say why.
func nothingStored(ctx context.Context, d driver.StorageDriver) bool {
	for _, p := range []string{regstore.Repositories, regstore.Blobs} {
		if _, err := d.Stat(ctx, p); !regstore.IsNotFound(err) {
			return false
		}
	}
	return true
}

// purgeUploads removes every partial upload. A push killed with the
// server, or refused by a full disk, leaves its upload behind, and
// distribution purges those only after a week; they hold the very space a
// user runs gc to get back. The sweep runs with every registry serving
// the storage holding its writes: an upload a push has open (held between
// two chunks) stays.
func (r *recordingDriver) purgeUploads(ctx context.Context) error {
	var uploads []string
	err := r.StorageDriver.Walk(ctx, regstore.Repositories, func(fi driver.FileInfo) error {
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
	if err != nil && !regstore.IsNotFound(err) {
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
	rep *Report
	// uploads are the partial uploads open (by id): they stay.
	uploads map[string]bool
	// inUse are blobs a push in flight may still name: they stay.
	inUse map[digest.Digest]bool
}

// Delete records path and deletes it unless dry.
func (r *recordingDriver) Delete(ctx context.Context, path string) error {
	if r.open(path) || r.used(path) {
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
	case strings.HasPrefix(path, regstore.Blobs+"/") && len(parts) >= 3:
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
	if strings.HasPrefix(path, regstore.Blobs+"/") {
		// A blob's directory holds its data file alone.
		if data, err := r.StorageDriver.Stat(ctx, path+"/data"); err == nil && !data.IsDir() {
			return data.Size(), nil
		}
	}
	fi, err := r.StorageDriver.Stat(ctx, path)
	if regstore.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
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

// open reports whether p is an upload a push has open.
func (r *recordingDriver) open(p string) bool {
	return len(r.uploads) > 0 && strings.Contains(p, "/_uploads/") && r.uploads[path.Base(p)]
}

// used reports whether p is the data of a blob in use.
func (r *recordingDriver) used(p string) bool {
	if len(r.inUse) == 0 || !strings.HasPrefix(p, regstore.Blobs+"/") {
		return false
	}
	parts := strings.Split(p, "/")
	if len(parts) < 3 {
		return false
	}
	return r.inUse[digest.NewDigestFromEncoded(digest.Algorithm(parts[len(parts)-3]), parts[len(parts)-1])]
}
