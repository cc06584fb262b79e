package server

import (
	"context"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
)

// backendStatus fills the backend and peers of res: every live replica of
// the shared backend but this one. A backend that cannot be read is said
// in PeersErr.
func backendStatus(ctx context.Context, c *config.Config, res *StatusResult) {
	if !c.Backend.S3() {
		return
	}
	res.Backend = c.Backend.String()
	_, d, err := regconfig.ReadStorage(c)
	if err != nil {
		res.PeersErr = err.Error()
		return
	}
	all, err := replica.List(ctx, d)
	if err != nil {
		res.PeersErr = err.Error()
		return
	}
	self := replica.ID(c.Port)
	res.Peers = []replica.Replica{}
	for _, r := range all {
		if r.ID != self {
			res.Peers = append(res.Peers, r)
		}
	}
}
