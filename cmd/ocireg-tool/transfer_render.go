package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ocireg-tool/ocireg-tool/internal/shellquote"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/transfer"
)

// progressSink draws transfer.Progress as a bar when the messages go to
// a terminal (never with --json).
func progressSink(app *App, json bool) events.Sink {
	if json || !isTerminal(app.Stderr) {
		return nil
	}
	return &barRenderer{w: app.Stderr}
}

// barRenderer draws one progress bar line.
type barRenderer struct {
	mu sync.Mutex
	w  io.Writer
}

// Emit draws a transfer.Progress.
func (r *barRenderer) Emit(e any) {
	p, ok := e.(transfer.Progress)
	if !ok || p.Total == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	const width = 30
	fill := min(width, int(float64(width)*float64(p.Done)/float64(p.Total)))
	fmt.Fprintf(r.w, "\r  [%s%s] %s / %s   ", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), tasks.HumanBytes(p.Done), tasks.HumanBytes(p.Total))
	if p.Finished {
		fmt.Fprint(r.w, "\n")
	}
}

// renderPromote prints what a promote did.
func renderPromote(w io.Writer, r *transfer.PromoteResult) {
	dest := r.Destination
	if r.Namespace != "" {
		dest += "/" + r.Namespace
	}
	via := "referrers tag (sha256-<digest>): no referrers API"
	if r.ReferrersAPI {
		via = "referrers API"
	}
	fmt.Fprintf(w, "Promoted to %s\n", dest)
	renderImages(w, r.Images, r.Destination)
	fmt.Fprintf(w, "Referrers recorded through the %s\n", via)
	fmt.Fprintf(w, "Sent %s (%d bytes)\n", tasks.HumanBytes(r.BytesSent), r.BytesSent)
}

// renderImages prints one block per image written.
func renderImages(w io.Writer, imgs []transfer.ImageResult, host string) {
	for _, img := range imgs {
		fmt.Fprintf(w, "  %s -> %s/%s\n", img.Source, host, img.Repo)
		for _, t := range img.Tags {
			note := ""
			if t.Unchanged {
				note = ", unchanged"
			}
			if t.Source != t.Tag {
				note += ", from " + t.Source
			}
			fmt.Fprintf(w, "    :%s (%s%s)\n", t.Tag, shortDigest(t.Digest), note)
		}
		fmt.Fprintf(w, "    manifests: %d (%d written), referrers: %d\n", img.Manifests, img.ManifestsWritten, img.Referrers)
		fmt.Fprintf(w, "    blobs:     %d (%d uploaded, %s; %d mounted; %d already there)\n", img.Blobs, img.BlobsUploaded, tasks.HumanBytes(img.BytesUploaded), img.BlobsMounted, img.BlobsPresent)
	}
}

// renderExport prints what an export wrote.
func renderExport(w io.Writer, r *transfer.ExportResult) {
	kind := "bundle"
	if r.Since != "" {
		kind = "differential bundle (since " + shellquote.Word(r.Since) + ")"
	}
	fmt.Fprintf(w, "Exported %d image(s) to %s, a %s\n", len(r.Images), shellquote.Word(r.Output), kind)
	for _, img := range r.Images {
		fmt.Fprintf(w, "  %s: %s; %d manifest(s), %d referrer(s)\n", img.Repo, strings.Join(img.Tags, ", "), img.Manifests, img.Referrers)
	}
	if r.Since != "" {
		fmt.Fprintf(w, "  blobs:  %d written, %d left out (in the earlier bundle)\n", r.Blobs, r.Skipped)
	} else {
		fmt.Fprintf(w, "  blobs:  %d\n", r.Blobs)
	}
	fmt.Fprintf(w, "  size:   %s (%d bytes)\n", tasks.HumanBytes(r.Size), r.Size)
	fmt.Fprintf(w, "  sha256: %s\n", r.SHA256)
}

// renderImportBundle prints what the import of a bundle wrote.
func renderImportBundle(w io.Writer, url string, r *transfer.ImportResult) {
	fmt.Fprintf(w, "Imported bundle %s (%s) into %s\n", shellquote.Word(r.File), r.Kind, url)
	renderImages(w, r.Images, url)
	fmt.Fprintf(w, "Sent %s (%d bytes)\n", tasks.HumanBytes(r.BytesSent), r.BytesSent)
}
