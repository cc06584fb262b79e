package retention

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
)

// Without returns a view of d in which the tags plan prunes do not exist:
// listing, statting, reading and walking their directories finds nothing.
// A dry-run sweep over it reports exactly what the sweep after Apply
// removes. Writes go to d unchanged (a dry run makes none).
func Without(d driver.StorageDriver, plan *Plan) driver.StorageDriver {
	return &without{StorageDriver: d, hidden: plan.pruned()}
}

type without struct {
	driver.StorageDriver
	hidden map[string]bool // tag directories (regstore.Tag)
}

// tagsDir is the part of a storage path between a repository and its tag
// names; repository path components cannot start with '_', so the first
// occurrence is the repository's own.
const tagsDir = "/_manifests/tags/"

// isHidden reports whether p is a hidden tag directory or below one.
func (w *without) isHidden(p string) bool {
	i := strings.Index(p, tagsDir)
	if i < 0 {
		return false
	}
	rest := p[i+len(tagsDir):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return w.hidden[p[:i+len(tagsDir)]+rest]
}

func (w *without) notFound(p string) error {
	return driver.PathNotFoundError{Path: p, DriverName: w.Name()}
}

func (w *without) GetContent(ctx context.Context, p string) ([]byte, error) {
	if w.isHidden(p) {
		return nil, w.notFound(p)
	}
	return w.StorageDriver.GetContent(ctx, p)
}

func (w *without) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	if w.isHidden(p) {
		return nil, w.notFound(p)
	}
	return w.StorageDriver.Reader(ctx, p, offset)
}

func (w *without) Stat(ctx context.Context, p string) (driver.FileInfo, error) {
	if w.isHidden(p) {
		return nil, w.notFound(p)
	}
	return w.StorageDriver.Stat(ctx, p)
}

func (w *without) List(ctx context.Context, p string) ([]string, error) {
	if w.isHidden(p) {
		return nil, w.notFound(p)
	}
	entries, err := w.StorageDriver.List(ctx, p)
	if err != nil {
		return nil, err
	}
	out := entries[:0:0]
	for _, e := range entries {
		if !w.isHidden(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (w *without) Walk(ctx context.Context, p string, f driver.WalkFn, options ...func(*driver.WalkOptions)) error {
	if w.isHidden(p) {
		return w.notFound(p)
	}
	return w.StorageDriver.Walk(ctx, p, func(fi driver.FileInfo) error {
		if w.isHidden(fi.Path()) {
			if fi.IsDir() {
				return driver.ErrSkipDir
			}
			return nil
		}
		return f(fi)
	}, options...)
}

// Apply removes the tags plan prunes from d through distribution's tag
// service. A tag that no longer points where the plan found it (pushed
// again since) is left alone, and one already gone is skipped. It returns
// the tags it removed, per repository.
func Apply(ctx context.Context, d driver.StorageDriver, plan *Plan) (map[string][]string, error) {
	reg, err := storage.NewRegistry(ctx, d, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("opening registry storage: %w", err)
	}
	removed := map[string][]string{}
	for _, r := range plan.Repos {
		going := r.Tags(true)
		if len(going) == 0 {
			continue
		}
		ref, err := reference.WithName(r.Name)
		if err != nil {
			return removed, err
		}
		repo, err := reg.Repository(ctx, ref)
		if err != nil {
			return removed, fmt.Errorf("%s: %w", r.Name, err)
		}
		ts := repo.Tags(ctx)
		for _, t := range going {
			desc, err := ts.Get(ctx, t.Name)
			var unknown distribution.ErrTagUnknown
			switch {
			case isUnknownTag(err, &unknown):
				continue
			case err != nil:
				return removed, fmt.Errorf("%s:%s: %w", r.Name, t.Name, err)
			case desc.Digest != t.Digest:
				continue
			}
			if err := ts.Untag(ctx, t.Name); err != nil && !isUnknownTag(err, &unknown) {
				return removed, fmt.Errorf("removing %s:%s: %w", r.Name, t.Name, err)
			}
			removed[r.Name] = append(removed[r.Name], t.Name)
		}
	}
	return removed, nil
}
