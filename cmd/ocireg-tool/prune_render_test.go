package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/tasks/collect"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// prunePlan is a plan of two images under the newest 2 and latest
// protected: three builds of one image go, the other image keeps all.
func prunePlan(pruned bool) *retention.Plan {
	p := retention.Policy{Keep: 2, Protect: []string{"latest", "release-*"}}
	at := func(day int) time.Time { return time.Date(2026, 11, day, 3, 0, 0, 0, time.UTC) }
	tag := func(name string, kind retention.Kind, archOf, reason string, dg digest.Digest) retention.Tag {
		return retention.Tag{Name: name, Kind: kind, ArchOf: archOf, Digest: dg, Reason: reason}
	}
	d := func(s string) digest.Digest { return digest.FromString(s) }
	build := func(day int, prune bool, reason string, tags ...retention.Tag) retention.Build {
		return retention.Build{Digest: tags[0].Digest, Time: at(day), Tags: tags, Prune: prune, Reason: reason}
	}
	base := retention.Repo{Name: "yocto/container-base", Builds: []retention.Build{
		build(27, false, "newest 2",
			tag("20261127-030000", retention.KindTimestamp, "", "newest 2", d("b27")),
			tag("latest", retention.KindOther, "", "protected by pattern latest", d("b27")),
			tag("20261127-030000-aarch64", retention.KindArch, "20261127-030000", "newest 2", d("b27a"))),
		build(26, false, "newest 2", tag("20261126-030000", retention.KindTimestamp, "", "newest 2", d("b26"))),
		build(20, false, "protected by pattern release-* (tag release-1)",
			tag("abc1234", retention.KindSha, "", "protected by pattern release-* (tag release-1)", d("rel")),
			tag("release-1", retention.KindOther, "", "protected by pattern release-*", d("rel"))),
	}}
	if pruned {
		base.Builds = append(base.Builds,
			build(25, true, "beyond the newest 2",
				tag("20261125-030000", retention.KindTimestamp, "", "beyond the newest 2", d("b25")),
				tag("20261125-030000-aarch64", retention.KindArch, "20261125-030000", "beyond the newest 2", d("b25a"))),
			build(24, true, "beyond the newest 2", tag("20261124-030000", retention.KindTimestamp, "", "beyond the newest 2", d("b24"))))
	}
	other := retention.Repo{Name: "yocto/tools", Builds: []retention.Build{
		build(1, false, "newest 2", tag("1.2.3", retention.KindVersion, "", "newest 2", d("t1"))),
	}}
	return &retention.Plan{Policy: p, Now: at(28), Repos: []retention.Repo{base, other}}
}

func TestPruneRenderGolden(t *testing.T) {
	plan, nothing := prunePlan(true), prunePlan(false)
	dry := gcReport(9, false)
	removed := *dry
	removed.Removed = true
	gcRes := func(r collect.Result) *server.GCResult {
		r.RemoveUntagged = true
		return &server.GCResult{Where: "/STORAGE/data", Result: r}
	}
	dryOnly := &server.PruneResult{Policy: plan.Policy, Enabled: true, Plan: plan, GC: gcRes(collect.Result{DryRun: dry})}
	gone := map[string][]string{"yocto/container-base": {"20261125-030000", "20261125-030000-aarch64", "20261124-030000"}}
	yes := &server.PruneResult{Policy: plan.Policy, Enabled: true, Plan: plan, Removed: gone,
		GC: gcRes(collect.Result{DryRun: dry, Removed: &removed, Held: []string{"build1_5000"}})}
	declined := &server.PruneResult{Policy: plan.Policy, Enabled: true, Plan: plan, GC: gcRes(collect.Result{DryRun: dry, Declined: true})}
	none := &server.PruneResult{Policy: nothing.Policy, Enabled: true, Plan: nothing}
	off := &server.PruneResult{Policy: retention.Policy{Protect: []string{"latest"}}}
	for _, tc := range []renderCase{
		{"no-policy", nil, off, func(w io.Writer) { writePrune(w, off, goldenScript, "") }},
		{"nothing-to-prune", []any{server.PrunePlanned{Plan: nothing}}, none, func(w io.Writer) { writePrune(w, none, goldenScript, "") }},
		{"dry-run-only", []any{server.PrunePlanned{Plan: plan}, server.DryRun{Where: "/STORAGE/data", Report: dry}},
			dryOnly, func(w io.Writer) { writePrune(w, dryOnly, goldenScript, "container-base --keep 2") }},
		{"yes", []any{server.WritesHeld{Storage: "/STORAGE/data", Registries: []string{"build1_5000"}},
			server.PrunePlanned{Plan: plan}, server.DryRun{Where: "/STORAGE/data", Report: dry}, server.TagsPruned{Removed: gone},
			server.WritesResumed{}, server.Collected{Removed: &removed}},
			yes, func(w io.Writer) { writePrune(w, yes, goldenScript, "--keep 2") }},
		{"declined", []any{server.PrunePlanned{Plan: plan}, server.DryRun{Where: "/STORAGE/data", Report: dry}, pruneQuestion},
			declined, func(w io.Writer) { writePrune(w, declined, goldenScript, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var text bytes.Buffer
			sink := &serverText{w: &text, script: goldenScript, prune: true}
			for _, e := range tc.events {
				if q, ok := e.(string); ok {
					text.WriteString(q + "n\n")
					continue
				}
				sink.Emit(e)
			}
			tc.final(&text)
			checkGolden(t, "prune/"+tc.name+".txt", text.String())
			var js bytes.Buffer
			if err := writeJSON(&js, tc.result); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "prune/"+tc.name+".json", js.String())
			if tc.name == "dry-run-only" {
				for _, w := range []string{"20261125-030000-aarch64  beyond the newest 2", "latest", "protected by pattern latest", "would free", "prune --yes container-base --keep 2"} {
					if !strings.Contains(text.String(), w) {
						t.Errorf("no %q in\n%s", w, text.String())
					}
				}
			}
		})
	}
}
