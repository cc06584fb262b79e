package replica

import (
	"context"
	"encoding/json"
	"errors"
	"path"
	"sort"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"
)

// List lists the live replicas of the shared backend d (records
// younger than replicaStale), by id.
func List(ctx context.Context, d driver.StorageDriver) ([]Replica, error) {
	names, err := d.List(ctx, replicasDir)
	var nf driver.PathNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Replica
	for _, n := range names {
		fi, err := d.Stat(ctx, n)
		if err != nil || time.Since(fi.ModTime()) > replicaStale {
			continue
		}
		data, err := d.GetContent(ctx, n)
		if err != nil {
			continue
		}
		var r Replica
		if json.Unmarshal(data, &r) != nil || r.ID != path.Base(n) {
			continue
		}
		r.Seen = fi.ModTime().UTC()
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
