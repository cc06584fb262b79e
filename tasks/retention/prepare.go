package retention

import (
	"context"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Prepare is the step a collection runs before each sweep
// (collect.Options.Prepare) to prune with p the repositories repos (empty:
// every one). It decides again on the storage it is given each time: for a
// dry run it returns a view without the tags that would go, and otherwise
// (every writer held) it removes them and returns d. planned gets each
// plan, applied the tags removed (also when the removal failed half way).
func Prepare(p Policy, now time.Time, repos []string, planned func(plan *Plan, dryRun bool), applied func(map[string][]string)) func(context.Context, driver.StorageDriver, bool) (driver.StorageDriver, error) {
	return func(ctx context.Context, d driver.StorageDriver, dryRun bool) (driver.StorageDriver, error) {
		plan, err := Decide(ctx, d, p, now, repos)
		if err != nil {
			return nil, err
		}
		if planned != nil {
			planned(plan, dryRun)
		}
		if dryRun {
			return Without(d, plan), nil
		}
		removed, err := Apply(ctx, d, plan)
		if applied != nil {
			applied(removed)
		}
		return d, err
	}
}

// Record is what a prune did, for info, help and the registry browser
// (runstate.WritePruneRecord): the policy, the last plan (nil without
// one), the tags removed (nil after a dry run only), the bytes the sweep
// freed or would free, and the error that ended it.
func Record(p Policy, plan *Plan, removed map[string][]string, bytes int64, err error) runstate.PruneRecord {
	rec := runstate.PruneRecord{At: time.Now().UTC(), Policy: p.String(), Bytes: bytes}
	if plan != nil {
		rec.Images, rec.Tags, rec.Kept = len(plan.Repos), plan.Pruned(), plan.Kept()
	}
	if removed != nil {
		rec.Removed, rec.Tags = true, 0
		for _, tags := range removed {
			rec.Tags += len(tags)
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	return rec
}
