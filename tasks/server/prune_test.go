package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Prune's dry run lists the tags and the bytes and removes nothing; with
// Yes the old builds go, the newest and latest stay, and the record says
// so. Without a policy it does nothing at all.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t, nil)
	o, rec := testOptions(t)
	if _, err := regconfig.EnsureFile(c); err != nil {
		t.Fatal(err)
	}
	reg := testreg.New(t, testreg.WithFilesystem(c.DataDir()))
	const repo = "yocto/app"
	tags := []string{"20260101-000000", "20260102-000000", "20260103-000000", "latest"}
	for i, tag := range tags {
		if i < 3 {
			idx, _ := random.Index(1024, 1, 2)
			ref, _ := name.ParseReference(reg.Host+"/"+repo+":"+tag, name.Insecure)
			if err := remote.WriteIndex(ref, idx); err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				ref, _ := name.ParseReference(reg.Host+"/"+repo+":latest", name.Insecure)
				if err := remote.WriteIndex(ref, idx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	listTags := func() []string {
		r, _ := name.NewRepository(reg.Host+"/"+repo, name.Insecure)
		got, err := remote.List(r)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}

	res, err := Prune(ctx, c, PruneOptions{Options: o})
	if err != nil || res.Enabled || res.GC != nil || res.Plan != nil {
		t.Fatalf("without a policy: %+v %v", res, err)
	}
	wantKinds(t, "no policy", rec)

	policy := retention.Policy{Keep: 1, Protect: []string{"latest"}}
	res, err = Prune(ctx, c, PruneOptions{Options: o, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRunOnly() || res.Plan.Pruned() != 2 || res.GC == nil || res.GC.DryRun.Bytes == 0 || len(res.GC.DryRun.Manifests) != 6 {
		t.Fatalf("dry run: %+v (gc %+v)", res, res.GC)
	}
	wantKinds(t, "dry run", rec, "PrunePlanned", "DryRun")
	if got := listTags(); !slices.Equal(got, tags) {
		t.Fatalf("the dry run changed the tags: %v", got)
	}
	r, err := runstate.ReadPruneRecord(c)
	if err != nil || r == nil || r.Removed || r.Tags != 2 || r.Bytes != res.GC.DryRun.Bytes {
		t.Fatalf("record of the dry run: %+v %v", r, err)
	}

	asked := 0
	res, err = Prune(ctx, c, PruneOptions{Options: o, Policy: policy, Confirm: func() bool { asked++; return false }})
	if err != nil || asked != 1 || res.DryRunOnly() || !res.GC.Declined || res.Removed != nil {
		t.Fatalf("declined: %+v %v (asked %d)", res, err, asked)
	}
	wantKinds(t, "declined", rec, "PrunePlanned", "DryRun")
	if got := listTags(); !slices.Equal(got, tags) {
		t.Fatalf("a declined prune changed the tags: %v", got)
	}

	// Confirmed (Yes is the end-to-end test's): planned again, removed.
	res, err = Prune(ctx, c, PruneOptions{Options: o, Policy: policy, Now: time.Now(), Confirm: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if res.DryRunOnly() || len(res.Removed[repo]) != 2 || res.GC.Removed == nil || res.GC.Removed.Bytes != res.GC.DryRun.Bytes {
		t.Fatalf("removal: %+v (gc %+v)", res, res.GC)
	}
	wantKinds(t, "removal", rec, "PrunePlanned", "DryRun", "TagsPruned", "Collected")
	if res.GC.Removed.Bytes != res.GC.DryRun.Bytes {
		t.Errorf("removed %d bytes, the dry run said %d", res.GC.Removed.Bytes, res.GC.DryRun.Bytes)
	}
	if got := listTags(); !slices.Equal(got, []string{"20260103-000000", "latest"}) {
		t.Fatalf("after prune: %v", got)
	}
	if r, _ := runstate.ReadPruneRecord(c); r == nil || !r.Removed || r.Tags != 2 || r.Kept != 2 {
		t.Fatalf("record of the removal: %+v", r)
	}

	res, err = Prune(ctx, c, PruneOptions{Options: o, Policy: policy, Yes: true})
	if err != nil || res.Plan.Pruned() != 0 || res.GC != nil {
		t.Fatalf("again: %+v %v", res, err)
	}
	wantKinds(t, "nothing left", rec, "PrunePlanned")
}
