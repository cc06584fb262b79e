package server

import (
	"context"
	"encoding/json"
	"errors"
	"path"
	"sort"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

// Replicas lists the live replicas of the shared backend d (records
// younger than replicaStale), by id.
func Replicas(ctx context.Context, d driver.StorageDriver) ([]Replica, error) {
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

// backendStatus fills the backend and peers of res: every live replica of
// the shared backend but this one. A backend that cannot be read is said
// in PeersErr.
func backendStatus(ctx context.Context, c *config.Config, res *StatusResult) {
	if !c.Backend.S3() {
		return
	}
	res.Backend = c.Backend.String()
	cfg, _, err := regconfig.Read(c)
	if err != nil {
		res.PeersErr = err.Error()
		return
	}
	d, err := regstore.Open(ctx, cfg)
	if err != nil {
		res.PeersErr = err.Error()
		return
	}
	all, err := Replicas(ctx, d)
	if err != nil {
		res.PeersErr = err.Error()
		return
	}
	self := replicaID(c)
	res.Peers = []Replica{}
	for _, r := range all {
		if r.ID != self {
			res.Peers = append(res.Peers, r)
		}
	}
}
