package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/generator/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
	"github.com/ocireg-tool/ocireg-tool/tasks"
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
	// Interactive is true when the user can answer a question (stdin and
	// stdout are terminals); In is where the answer is read from.
	Interactive bool
	In          io.Reader
}

// GCReport sums up what a collection found or removed.
type GCReport struct {
	Blobs     []Removal // blob data
	Manifests []Removal // manifest revisions of untagged manifests
	Other     []Removal // layer links and tag index entries
	Uploads   []Removal // partial uploads of interrupted or failed pushes
	Bytes     int64     // total size of everything above
	Removed   bool      // false for a dry run

	// paths lists every removal in the order the sweep made it, so a dry
	// run taken while nothing can write can be carried out as recorded.
	paths []string
}

// Removal is one storage path a collection removes.
type Removal struct {
	Path  string
	Name  string // digest, or repo@digest for manifests
	Bytes int64
}

// GC garbage-collects the registry storage with distribution's mark and
// sweep. It first shows a dry run (what would be removed, and the bytes);
// then it removes only with Yes or a "y" answer on a terminal. Without a
// terminal and without Yes, it stops after the dry run and says how to
// proceed. The sweep never runs while the registry can write: a running
// registry is stopped first and started again afterwards, also when the
// sweep fails.
func GC(ctx context.Context, c *config.Config, o GCOptions) (rep *GCReport, err error) {
	o.defaults()
	out := o.Out
	if _, err := regconfig.EnsureFile(c); err != nil {
		return nil, err
	}
	cfg, _, err := regconfig.Load(c)
	if err != nil {
		return nil, err
	}
	// distribution logs every deletion through logrus; the report below
	// says it better.
	logrus.SetOutput(io.Discard)

	where := c.DataDir()
	if cfg.Storage.Type() != "filesystem" {
		where = cfg.Storage.Type() + " storage"
	} else if root, ok := cfg.Storage.Parameters()["rootdirectory"].(string); ok {
		where = root
	}

	// With --yes the registry is stopped before the dry run: nothing can
	// write between it and the removal, so the removal carries out exactly
	// the recorded dry run instead of marking everything again.
	if o.Yes {
		var restart func() error
		if restart, err = stopForSweep(ctx, c, o); err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, restart()) }()
	}
	dry, err := sweep(ctx, cfg, o.DeleteUntagged, true)
	if err != nil {
		return nil, err
	}
	// Deleting a tag that another tag's index still lists leaves its
	// manifest (untagged) behind, and a plain mark and sweep keeps
	// everything a stored manifest references. A dry run says what
	// --delete-untagged would add.
	untaggedHint := func() {
		if o.DeleteUntagged || o.Yes {
			return
		}
		more, err := sweep(ctx, cfg, true, true)
		if err != nil || len(more.Manifests) == 0 {
			return
		}
		fmt.Fprintf(out, "  %d manifest(s) no tag references are kept (%s more with --delete-untagged):\n    %s gc --delete-untagged\n",
			len(more.Manifests), humanBytes(more.Bytes-dry.Bytes), o.Script)
	}
	fmt.Fprintf(out, "Garbage collection dry run (%s):\n", where)
	if dry.empty() {
		fmt.Fprintf(out, "  Nothing to collect: every blob is referenced.\n")
		untaggedHint()
		return dry, nil
	}
	printRemovals(out, dry)
	fmt.Fprintf(out, "Would remove %d blob(s) and %d manifest(s)%s: %s\n", len(dry.Blobs), len(dry.Manifests), uploadsNote(dry), humanBytes(dry.Bytes))
	untaggedHint()

	if o.Yes {
		rep, err = carryOut(ctx, cfg, dry)
	} else {
		if !o.Interactive {
			fmt.Fprintf(out, "\nDry run only: nothing was removed.\nTo remove it, run: %s gc --yes", o.Script)
			if o.DeleteUntagged {
				fmt.Fprintf(out, " --delete-untagged")
			}
			fmt.Fprintln(out)
			return dry, nil
		}
		fmt.Fprintf(out, "\nRemove it? The registry is stopped during the collection and started again. [y/N] ")
		answer, _ := bufio.NewReader(o.In).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
		default:
			fmt.Fprintf(out, "Aborted: nothing was removed.\n")
			return dry, nil
		}
		var restart func() error
		if restart, err = stopForSweep(ctx, c, o); err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, restart()) }()
		// The registry ran during the dry run: mark again.
		rep, err = sweep(ctx, cfg, o.DeleteUntagged, false)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "Garbage collection complete: removed %d blob(s) and %d manifest(s)%s, freed %s\n", len(rep.Blobs), len(rep.Manifests), uploadsNote(rep), humanBytes(rep.Bytes))
	return rep, nil
}

// stopForSweep stops the registry of c when it runs, so nothing writes
// while gc sweeps, and returns the function that starts it again (a no-op
// when it was not running).
func stopForSweep(ctx context.Context, c *config.Config, o GCOptions) (func() error, error) {
	out := o.Out
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
	fmt.Fprintf(out, "Stopping the registry for the collection...\n")
	if _, err := Stop(c, o.Options); err != nil {
		return nil, err
	}
	return func() error {
		fmt.Fprintf(out, "Starting the registry again...\n")
		if _, err := Start(context.WithoutCancel(ctx), c, o.Options); err != nil {
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

// uploadsNote is " plus N partial upload(s)" when there are any.
func uploadsNote(r *GCReport) string {
	if len(r.Uploads) == 0 {
		return ""
	}
	return fmt.Sprintf(" plus %d partial upload(s)", len(r.Uploads))
}

func (r *GCReport) empty() bool {
	return len(r.Blobs) == 0 && len(r.Manifests) == 0 && len(r.Other) == 0 && len(r.Uploads) == 0
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
	reg, err := storage.NewRegistry(ctx, rec, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	err = storage.MarkAndSweep(ctx, rec, reg, storage.GCOpts{RemoveUntagged: removeUntagged, Quiet: true})
	if err != nil {
		var nf driver.PathNotFoundError
		if errors.As(err, &nf) && rec.rep.empty() {
			return rec.rep, nil // an empty registry: nothing stored yet
		}
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	if err := rec.purgeUploads(ctx); err != nil {
		return nil, fmt.Errorf("garbage collection: %w", err)
	}
	return rec.rep, nil
}

// repositoriesPath is where distribution keeps repositories in its storage.
const repositoriesPath = "/docker/registry/v2/repositories"

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
}

// Delete records path and deletes it unless dry.
func (r *recordingDriver) Delete(ctx context.Context, path string) error {
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

// printRemovals lists what a collection removes, largest blobs first, at most
// 50 blobs.
func printRemovals(w io.Writer, r *GCReport) {
	for _, m := range r.Manifests {
		fmt.Fprintf(w, "  manifest %s (no tag)\n", m.Name)
	}
	for _, u := range r.Uploads {
		fmt.Fprintf(w, "  partial upload %s %s\n", u.Name, humanBytes(u.Bytes))
	}
	blobs := append([]Removal(nil), r.Blobs...)
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Bytes > blobs[j].Bytes })
	const max = 50
	for i, b := range blobs {
		if i == max {
			fmt.Fprintf(w, "  ... and %d more blob(s)\n", len(blobs)-max)
			break
		}
		fmt.Fprintf(w, "  blob %s %s\n", b.Name, humanBytes(b.Bytes))
	}
}

// humanBytes formats n as "1.5 MiB (1572864 bytes)".
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%s (%d bytes)", tasks.HumanBytes(n), n)
}
