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
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// collectEvery collects the storage of r every c.GCInterval while ctx
// lasts (CONTAINER_REGISTRY_GC_INTERVAL): online, as `gc --yes` does, with
// this registry holding its writes like every other one. Replicas of a
// shared backend take turns: a collection runs only when none ran on the
// storage within the interval (replica.LastCollected), and never two at
// once (replica.ErrBusy). The first one waits a random part of the
// interval, so replicas started together do not all try at once. With a
// retention policy (CONTAINER_REGISTRY_RETENTION_*), each collection prunes
// first, as `prune --yes` does, and records it like prune.
func (r *instance) collectEvery(ctx context.Context, c *config.Config) {
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
		o := collect.Options{Yes: true}
		policy := retention.FromConfig(c)
		var plan *retention.Plan
		var removed map[string][]string
		if policy.Enabled() {
			// The children of a pruned index are untagged manifests.
			o.RemoveUntagged = true
			o.Prepare = retention.Prepare(policy, time.Now(), nil,
				func(p *retention.Plan, _ bool) { plan = p },
				func(tags map[string][]string) { removed = tags })
		}
		res, err := collect.Run(ctx, c, r.cfg, r.driver, o)
		if policy.Enabled() && !errors.Is(err, replica.ErrBusy) {
			var freed int64
			if res != nil && res.Removed != nil {
				freed = res.Removed.Bytes
			}
			_ = runstate.WritePruneRecord(c, retention.Record(policy, plan, removed, freed, err))
			n := 0
			for _, tags := range removed {
				n += len(tags)
			}
			if n > 0 {
				r.log.Infof("background gc: pruned %d tag(s) (%s)", n, policy)
			}
		}
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
