package ui

import (
	"context"
	"errors"
	"fmt"
	"path"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Stats are the storage figures of the registry page.
type Stats struct {
	Blobs int
	Bytes int64
}

// stats walks the blob store (cached until a blob is pushed or deleted).
func (s *Site) stats(ctx context.Context) (*Stats, error) {
	if st := s.cache.getStats(); st != nil {
		return st, nil
	}
	seq := s.cache.now()
	st := &Stats{}
	err := s.driver.Walk(ctx, regstore.Blobs, func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() && path.Base(fi.Path()) == "data" {
			st.Blobs++
			st.Bytes += fi.Size()
		}
		return nil
	})
	var pnf storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &pnf) {
		return nil, fmt.Errorf("walking the blob store: %w", err)
	}
	s.cache.putStats(st, seq)
	return st, nil
}

// registryData is the registry page.
type registryData struct {
	URL, TargetURL, Mode, Storage, Driver string
	Repos, Tags                           int
	Stats                                 *Stats
	Commands                              []pull
	// The last gc, as it recorded itself (nil: none).
	GC        *runstate.GCRecord
	RecordErr string
	// Retention is the policy of prune in one line; PruneOnPush whether
	// push prunes; Prune the last prune as it recorded itself (nil: none).
	Retention   string
	PruneOnPush bool
	Prune       *runstate.PruneRecord
}

func (s *Site) registryData(ctx context.Context) (*registryData, error) {
	c := s.c
	d := &registryData{URL: c.BaseURL(), TargetURL: c.TargetURL, Mode: c.Mode(), Storage: c.Storage, Driver: s.driver.Name()}
	names, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.repos(ctx, names)
	if err != nil {
		return nil, err
	}
	for _, rows := range all {
		if len(rows.Tags) > 0 {
			d.Repos++
			d.Tags += len(rows.Tags)
		}
	}
	if d.Stats, err = s.stats(ctx); err != nil {
		return nil, err
	}
	if d.GC, err = runstate.ReadGCRecord(c); err != nil {
		d.RecordErr = err.Error()
	}
	d.Retention, d.PruneOnPush = retention.FromConfig(c).String(), c.Retention.OnPush
	if d.Prune, err = runstate.ReadPruneRecord(c); err != nil {
		d.RecordErr = err.Error()
	}
	script := c.Script()
	d.Commands = []pull{
		{"push every deployed image", script + " push"},
		{"import a third-party image", script + " import docker.io/library/alpine:latest"},
		{"list images and tags", script + " list"},
		{"check every tag, manifest and blob", script + " verify"},
		{"garbage-collect (dry run first)", script + " gc"},
		{"prune old builds by the retention policy (dry run first)", script + " prune"},
	}
	return d, nil
}
