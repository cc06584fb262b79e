package serve

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/collect"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
)

// collectEvery collects the storage of r every c.GCInterval while ctx
// lasts (CONTAINER_REGISTRY_GC_INTERVAL): online, as `gc --yes` does, with
// this registry holding its writes like every other one. Replicas of a
// shared backend take turns: a collection runs only when none ran on the
// storage within the interval (replica.LastCollected), and never two at
// once (replica.ErrBusy). The first one waits a random part of the
// interval, so replicas started together do not all try at once.
func (r *instance) collectEvery(ctx context.Context, c *config.Config, o collect.Options) {
	every := c.GCInterval
	wait := every/2 + rand.N(every/2)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = every
		if last, err := replica.LastCollected(ctx, r.driver); err == nil && time.Since(last) < every {
			wait = every - time.Since(last) + rand.N(every/10+1)
			continue
		}
		o.Yes = true
		res, err := collect.Run(ctx, c, r.cfg, r.driver, o)
		switch {
		case errors.Is(err, replica.ErrBusy):
			r.log.Infof("background gc: %v; next in %s", err, every)
		case err != nil:
			r.log.Errorf("background gc: %v", err)
		case res.Removed == nil:
			r.log.Infof("background gc: nothing to remove; next in %s", every)
		default:
			r.log.Infof("background gc: removed %d blob(s), %d manifest(s), %d upload(s), freed %s; next in %s",
				len(res.Removed.Blobs), len(res.Removed.Manifests), len(res.Removed.Uploads), tasks.HumanBytes(res.Removed.Bytes), every)
		}
	}
}
