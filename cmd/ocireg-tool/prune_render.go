package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/server"
)

// pruneQuestion is what prune asks on a terminal after the dry run.
const pruneQuestion = "\nRemove these tags and what only they use? Pushes wait during the collection, pulls go on. [y/N] "

// writePlan lists, per image, the tags that go and those that stay, each
// with its reason.
func writePlan(w io.Writer, p *retention.Plan) {
	fmt.Fprintf(w, "Retention policy: %s\n", p.Policy)
	if len(p.Repos) == 0 {
		fmt.Fprintf(w, "  No tags stored.\n")
	}
	for _, r := range p.Repos {
		going, staying := r.Tags(true), r.Tags(false)
		fmt.Fprintf(w, "%s: %d tag(s) go, %d stay\n", r.Name, len(going), len(staying))
		width := 0
		for _, t := range append(going, staying...) {
			width = max(width, len(t.Name))
		}
		for _, t := range going {
			fmt.Fprintf(w, "  remove %-*s  %s\n", width, t.Name, t.Reason)
		}
		for _, t := range staying {
			fmt.Fprintf(w, "  keep   %-*s  %s\n", width, t.Name, t.Reason)
		}
	}
	if n := p.Pruned(); n == 0 {
		fmt.Fprintf(w, "Nothing to prune: the policy keeps every tag.\n")
	} else {
		fmt.Fprintf(w, "Would remove %d tag(s) of %d image(s), keep %d.\n", n, imagesPruned(p), p.Kept())
	}
}

// imagesPruned counts the images the plan removes tags of.
func imagesPruned(p *retention.Plan) int {
	n := 0
	for _, r := range p.Repos {
		if len(r.Tags(true)) > 0 {
			n++
		}
	}
	return n
}

// writePruneDryRun writes what the sweep after the removal frees (the
// blobs themselves are gc's list; prune sums them up).
func writePruneDryRun(w io.Writer, e server.DryRun) {
	r := e.Report
	fmt.Fprintf(w, "Garbage collection dry run without those tags (%s): would free %s: %d blob(s) and %d manifest(s)%s\n",
		e.Where, humanBytes(r.Bytes), len(r.Blobs), len(r.Manifests), uploadsNote(r))
}

// writeTagsPruned writes the tags removed before the sweep.
func writeTagsPruned(w io.Writer, removed map[string][]string) {
	repos := make([]string, 0, len(removed))
	n := 0
	for r, tags := range removed {
		repos = append(repos, r)
		n += len(tags)
	}
	sort.Strings(repos)
	fmt.Fprintf(w, "Removed %d tag(s) of %d image(s):\n", n, len(repos))
	for _, r := range repos {
		fmt.Fprintf(w, "  %s: %s\n", r, strings.Join(removed[r], " "))
	}
}

// writePrune writes what follows prune's events: how to set a policy,
// how to go on after a dry run, or that the question was answered no.
// args are the command's own arguments, for the line to run.
func writePrune(w io.Writer, r *server.PruneResult, script, args string) {
	if r == nil {
		return
	}
	switch {
	case !r.Enabled:
		fmt.Fprintf(w, "No retention policy: nothing is pruned.\n")
		fmt.Fprintf(w, "Set one with CONTAINER_REGISTRY_RETENTION_KEEP (the newest N builds of every image) and/or\n")
		fmt.Fprintf(w, "CONTAINER_REGISTRY_RETENTION_DAYS (builds younger than D days), or on the command line:\n")
		fmt.Fprintf(w, "  %s prune --keep 5\n", script)
	case r.DryRunOnly():
		line := script + " prune --yes"
		if args != "" {
			line += " " + args
		}
		fmt.Fprintf(w, "\nDry run only: nothing was removed.\nTo remove it, run: %s\n", line)
	case r.GC != nil && r.GC.Declined:
		fmt.Fprintf(w, "Aborted: nothing was removed.\n")
	}
}
