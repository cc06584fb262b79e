package main

import (
	"bytes"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/tasks/transfer"
)

// promote, export and the import of a bundle render to pinned text and
// JSON; the progress bar is drawn only for transfer.Progress.
func TestRenderTransferGolden(t *testing.T) {
	sig := "sha256-" + digestA.Hex + ".sig"
	img := transfer.ImageResult{
		Source: "yocto/container-base", Repo: "prod/container-base",
		Tags: []transfer.TagResult{
			{Source: sig, Tag: sig, Digest: digestA.String(), Attached: true},
			{Source: "20260112-143022", Tag: "1.2.0", Digest: digestA.String()},
		},
		Manifests: 10, ManifestsWritten: 10, Referrers: 6, Blobs: 15, BlobsUploaded: 12, BlobsMounted: 1, BlobsPresent: 2, BytesUploaded: 23 << 20,
	}
	again := img
	again.Tags = []transfer.TagResult{{Source: "v1", Tag: "v1", Digest: digestA.String(), Unchanged: true}}
	again.ManifestsWritten, again.BlobsUploaded, again.BlobsMounted, again.BlobsPresent, again.BytesUploaded = 0, 0, 0, 15, 0
	promote := &transfer.PromoteResult{Destination: "registry.example.com", Namespace: "prod", Images: []transfer.ImageResult{img}, BytesSent: 24 << 20}
	unchanged := &transfer.PromoteResult{Destination: "127.0.0.1:5001", ReferrersAPI: true, Images: []transfer.ImageResult{again}}
	export := &transfer.ExportResult{Output: "/srv/out/release 1.tar", Images: []transfer.ExportedImage{
		{Repo: "yocto/container-base", Name: "container-base", Tags: []string{sig, "v1"}, Manifests: 10, Referrers: 6},
		{Repo: "yocto/app-server", Name: "app-server", Tags: []string{"v1"}, Manifests: 9, Referrers: 6},
	}, Blobs: 44, Size: 98816, SHA256: digestA.Hex}
	diff := *export
	diff.Since, diff.Blobs, diff.Skipped = "/srv/out/release 1.tar", 16, 17
	imported := &transfer.ImportResult{File: "release.tar", Kind: "full", Images: []transfer.ImageResult{img}, BytesSent: 24 << 20}
	cases := map[string]func(w *bytes.Buffer) error{
		"promote.txt":           func(w *bytes.Buffer) error { renderPromote(w, promote); return nil },
		"promote-unchanged.txt": func(w *bytes.Buffer) error { renderPromote(w, unchanged); return nil },
		"promote.json":          func(w *bytes.Buffer) error { return writeJSON(w, promote) },
		"export.txt":            func(w *bytes.Buffer) error { renderExport(w, export); return nil },
		"export-since.txt":      func(w *bytes.Buffer) error { renderExport(w, &diff); return nil },
		"export.json":           func(w *bytes.Buffer) error { return writeJSON(w, &diff) },
		"import-bundle.txt":     func(w *bytes.Buffer) error { renderImportBundle(w, "localhost:5000", imported); return nil },
		"transfer-progress.txt": func(w *bytes.Buffer) error {
			r := &barRenderer{w: w}
			for _, e := range []any{transfer.ImageDone{}, transfer.Progress{Done: 5 << 20, Total: 20 << 20}, transfer.Progress{Done: 20 << 20, Total: 20 << 20, Finished: true}} {
				r.Emit(e)
			}
			return nil
		},
	}
	for name, render := range cases {
		var w bytes.Buffer
		if err := render(&w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkGolden(t, name, w.String())
	}
}
