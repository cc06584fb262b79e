package server

import (
	"context"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// PruneOptions are the options of Prune.
type PruneOptions struct {
	Options
	// Policy is what to keep; without a count or an age limit nothing is
	// pruned.
	Policy retention.Policy
	// Repos are the repositories to prune (full names, namespace
	// included); empty: every one.
	Repos []string
	// Yes removes without asking.
	Yes bool
	// Confirm asks whether to remove what the dry run found (emitted as
	// PrunePlanned and DryRun); nil: without Yes, Prune stops after the
	// dry run.
	Confirm func() bool
	// Now is when the policy is applied (zero: the time Prune starts).
	Now time.Time
}

// PruneResult says what Prune planned, removed and collected.
type PruneResult struct {
	Policy  retention.Policy `json:"policy"`
	Enabled bool             `json:"enabled"`
	// Plan is the last plan made: the dry run's, or the removal's when it
	// happened (nil without a policy).
	Plan *retention.Plan `json:"plan,omitempty"`
	// Removed are the tags removed, per repository (nil when none were).
	Removed map[string][]string `json:"removed_tags,omitempty"`
	// GC is the collection that frees the pruned builds' bytes (nil when
	// the plan prunes nothing).
	GC *GCResult `json:"gc,omitempty"`
}

// DryRunOnly reports whether Prune stopped after a dry run that would
// prune tags because nobody could answer and Yes was not given.
func (r *PruneResult) DryRunOnly() bool {
	return r.Plan != nil && r.Plan.Pruned() > 0 && r.Removed == nil && (r.GC == nil || !r.GC.Declined)
}

// PrunePlanned is emitted with the plan of the dry run (before the
// dry-run sweep's DryRun), and with a plan that prunes nothing.
type PrunePlanned struct{ Plan *retention.Plan }

// TagsPruned is emitted when the tags of the plan were removed, before
// the sweep.
type TagsPruned struct{ Removed map[string][]string }

// Prune applies a retention policy: it plans which tags go
// (retention.Decide), then runs GC with a dry run over the storage
// without them (what the removal frees) and, with Yes or when Confirm
// says so, removes the tags while nothing else writes and sweeps. GC
// removes untagged manifests too: the platform manifests of a pruned
// index have no tag of their own; referrers of a live manifest stay.
func Prune(ctx context.Context, c *config.Config, o PruneOptions) (res *PruneResult, err error) {
	o.defaults()
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	res = &PruneResult{Policy: o.Policy, Enabled: o.Policy.Enabled()}
	if !res.Enabled {
		return res, nil
	}
	defer func() { recordPrune(c, res, err) }()
	_, d, _, err := gcStorage(c)
	if err != nil {
		return res, err
	}
	if res.Plan, err = retention.Decide(ctx, d, o.Policy, o.Now, o.Repos); err != nil {
		return res, err
	}
	if res.Plan.Pruned() == 0 {
		o.Events.Emit(PrunePlanned{Plan: res.Plan})
		return res, nil
	}
	// Each sweep plans again on the storage it sweeps: the dry run on a
	// view without the tags, the removal (every writer held) on the
	// storage after removing them.
	prepare := retention.Prepare(o.Policy, o.Now, o.Repos, func(plan *retention.Plan, dryRun bool) {
		res.Plan = plan
		if dryRun {
			o.Events.Emit(PrunePlanned{Plan: plan})
		}
	}, func(removed map[string][]string) {
		res.Removed = removed
		if len(removed) > 0 {
			o.Events.Emit(TagsPruned{Removed: removed})
		}
	})
	res.GC, err = GC(ctx, c, GCOptions{Options: o.Options, Yes: o.Yes, DeleteUntagged: true, Confirm: o.Confirm, Prepare: prepare})
	return res, err
}

// recordPrune keeps what this prune did (last-prune.json in the storage)
// for info, help and the registry browser. Advisory like the gc record.
func recordPrune(c *config.Config, res *PruneResult, err error) {
	var bytes int64
	if g := res.GC; g != nil {
		if g.Removed != nil {
			bytes = g.Removed.Bytes
		} else if g.DryRun != nil {
			bytes = g.DryRun.Bytes
		}
	}
	_ = runstate.WritePruneRecord(c, retention.Record(res.Policy, res.Plan, res.Removed, bytes, err))
}
