package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/push"
)

// pushRenderer prints a push's events as the lines the helper has always
// printed, each image's as one block, with one progress bar for the whole
// push when tty is set: on the last line, below the blocks (a line printed
// clears it; the next Progress draws it again).
type pushRenderer struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool
	bar bool // the bar is on the last line
}

// Emit renders one push event.
func (r *pushRenderer) Emit(e any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := e.(push.Progress); ok {
		r.progress(p)
		return
	}
	var b strings.Builder
	renderPushEvent(&b, e)
	if b.Len() == 0 {
		return
	}
	if r.bar {
		fmt.Fprint(r.w, "\r\x1b[K") // the bar's line makes room
		r.bar = false
	}
	io.WriteString(r.w, b.String())
}

// progress draws the bar on a terminal (no bar otherwise).
func (r *pushRenderer) progress(e push.Progress) {
	if !r.tty {
		return
	}
	const width = 30
	fill := int(float64(width) * float64(e.Sent) / float64(max(e.Total, 1)))
	fmt.Fprintf(r.w, "\r  [%s%s] %s / %s  %s/s   ", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		tasks.HumanBytes(e.Sent), tasks.HumanBytes(e.Total), tasks.HumanBytes(int64(e.Rate)))
	r.bar = !e.Done
	if e.Done {
		fmt.Fprint(r.w, "\n")
	}
}

// renderPushEvent writes the lines of one push event (none for a
// Progress or what is not a push event).
func renderPushEvent(w io.Writer, e any) {
	switch e := e.(type) {
	case push.Note:
		fmt.Fprintf(w, "Note: %s\n", e.Text)
	case push.BrokenBuild:
		fmt.Fprintf(w, "Error: %s [%s]: %s\n", e.Name, e.Machine, e.Reason)
	case push.Started:
		if e.AuthSource != "" {
			fmt.Fprintf(w, "Using credentials from %s\n", e.AuthSource)
		}
		arch := ""
		if e.Arch {
			arch = " + per-arch"
		}
		fmt.Fprintf(w, "Pushing to %s/%s (tags: %s%s)\n", e.URL, e.Namespace, strings.Join(e.Tags, " "), arch)
	case push.ManifestStarted:
		fmt.Fprintf(w, "Pushing: %s (%s) [from %s]\n", e.Image, e.Platform, e.Machine)
		fmt.Fprintf(w, "  source:   %s\n", e.Dir)
	case push.BlobsDone:
		fmt.Fprintf(w, "  blobs:    %d uploaded (%s), %d already present (%s)\n", e.Uploaded, tasks.HumanBytes(e.Sent), e.Present, tasks.HumanBytes(e.PresentBytes))
	case push.ManifestDone:
		fmt.Fprintf(w, "  manifest: %s\n", e.Digest)
	case push.DuplicateBuild:
		fmt.Fprintf(w, "Warning: %s: more than one build for %s; using the one from %s\n", e.Image, e.Platform, e.Machine)
	case push.TagWritten:
		note := ""
		if e.Unchanged {
			note = "; unchanged"
		}
		fmt.Fprintf(w, "  -> %s/%s:%s (index %s: %s%s)\n", e.URL, e.Repo, e.Tag, shortDigest(e.Digest.String()), strings.Join(e.Platforms, ", "), note)
	case push.ImageFailed:
		fmt.Fprintf(w, "Error: %s: %v\n", e.Image, e.Err)
	case push.ArtifactAttached:
		fmt.Fprintf(w, "  attached: %s (%s, %s%s)\n", e.File, e.ArtifactType, shortDigest(e.Digest.String()), attachNote(e.Attached))
	case push.AttachFailed:
		fmt.Fprintf(w, "Error: %s (%s): %v\n", e.Image, e.Platform, e.Err)
	case push.Signed:
		note := "signed"
		switch {
		case e.Attested != "" && e.Already:
			note = "already attested " + e.Attested + " for"
		case e.Attested != "":
			note = "attested " + e.Attested + " for"
		case e.Already:
			note = "already signed"
		}
		fmt.Fprintf(w, "  %s: %s@%s (%s)\n", note, e.Repo, shortDigest(e.Digest.String()), e.Tag)
	case push.Remerged:
		fmt.Fprintf(w, "  %s changed under a concurrent push; merging again\n", e.Tag)
	}
}

// renderPushSummary prints what a push did once it is over.
func renderPushSummary(w io.Writer, sum *push.Summary) {
	if sum == nil {
		return
	}
	if sum.Nothing {
		if len(sum.Roots) == 0 {
			fmt.Fprintf(w, "No OCI images to push (no deploy directory configured: set DEPLOY_DIR_IMAGES)\n")
		} else {
			roots := make([]string, len(sum.Roots))
			for i, r := range sum.Roots {
				roots[i] = shellquote.Word(r)
			}
			fmt.Fprintf(w, "No OCI images to push (searched: %s)\n", strings.Join(roots, ", "))
		}
		fmt.Fprintln(w, "Nothing to push.")
		return
	}
	if !sum.Pushed {
		return
	}
	if len(sum.OlderBuilds) > 0 {
		fmt.Fprintln(w, "Skipped (not the newest build):")
		for _, s := range sum.OlderBuilds {
			fmt.Fprintf(w, "  %s/%s (%s)\n", s.Machine, filepath.Base(s.Dir), s.Reason)
		}
	}
	fmt.Fprintf(w, "\nSummary: %d image(s), %d manifest(s), %d tag(s); uploaded %d bytes (%s), skipped %d bytes (%s) already in the registry; %.2fs\n",
		sum.Images, sum.Manifests, sum.Tags, sum.Uploaded, tasks.HumanBytes(sum.Uploaded), sum.Skipped, tasks.HumanBytes(sum.Skipped), sum.Elapsed.Seconds())
	if sum.SigningKey != "" {
		fmt.Fprintf(w, "Signed: %d manifest(s) with key %s, %d already signed\n", sum.Signed, sum.SigningKey, sum.SignedAlready)
		if sum.Attested+sum.AttestedAlready > 0 {
			fmt.Fprintf(w, "Attested: %d SPDX document(s) as signed in-toto statements, %d already attested\n", sum.Attested, sum.AttestedAlready)
		}
	}
	renderAttached(w, sum.Attached)
	if sum.Catalog != nil {
		fmt.Fprintln(w, "Catalog:")
		for _, r := range sum.Catalog {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
}

// shortDigest is "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// attachNote says whether an attached document was already there and how
// the registry lists it.
func attachNote(a push.Attached) string {
	note := ""
	if a.Unchanged {
		note += "; unchanged"
	}
	if a.Fallback {
		note += "; in the referrers tag: no referrers API"
	}
	return note
}

// renderAttached lists the build documents a push attached, per image and
// platform.
func renderAttached(w io.Writer, all []push.Attached) {
	if len(all) == 0 {
		return
	}
	sent := 0
	for _, a := range all {
		if !a.Unchanged {
			sent++
		}
	}
	fmt.Fprintf(w, "Attached: %d document(s), %d new, %d unchanged\n", len(all), sent, len(all)-sent)
	for _, a := range all {
		state := "new"
		if a.Unchanged {
			state = "unchanged"
		}
		fmt.Fprintf(w, "  %s (%s): %s as %s (%s, %s)\n", a.Image, a.Platform, a.File, a.ArtifactType, shortDigest(a.Digest.String()), state)
	}
}
