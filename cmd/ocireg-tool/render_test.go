package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/golden"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/importer"
	"github.com/ocireg-tool/ocireg-tool/tasks/push"
	"github.com/ocireg-tool/ocireg-tool/tasks/query"
	"github.com/ocireg-tool/ocireg-tool/tasks/remove"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
	"github.com/ocireg-tool/ocireg-tool/tasks/verify"
)

// checkGolden compares got with testdata/render/<name> (-update rewrites).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "render", name), got)
}

func renderConfig(t *testing.T, vars config.Vars) *config.Config {
	t.Helper()
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/cr", "TOPDIR": "/srv/build", "TARGET_ARCH": "x86_64"}.Overlay(vars))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var digestA = v1.Hash{Algorithm: "sha256", Hex: "3f1c0a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3"}

// Every command's result renders to pinned text, and to pinned JSON where
// the command has --json.
func TestRenderGolden(t *testing.T) {
	repos := []query.Repo{{Name: "yocto/app-server", Tags: []string{"latest", "20260112-143022"}}, {Name: "yocto/empty", Tags: []string{}}}
	secure := renderConfig(t, config.Vars{"CONTAINER_REGISTRY_SECURE": "1"})
	plain := renderConfig(t, nil)
	cases := map[string]func(w *bytes.Buffer) error{
		"list.txt":       func(w *bytes.Buffer) error { renderList(w, "localhost:5000", repos); return nil },
		"list-empty.txt": func(w *bytes.Buffer) error { renderList(w, "localhost:5000", nil); return nil },
		"list.json":      func(w *bytes.Buffer) error { return writeJSON(w, repos) },
		"tags.txt":       func(w *bytes.Buffer) error { renderTags(w, &repos[0]); return nil },
		"tags.json":      func(w *bytes.Buffer) error { return writeJSON(w, &repos[0]) },
		"catalog.json": func(w *bytes.Buffer) error {
			return writeJSON(w, map[string][]string{"repositories": {"yocto/app-server"}})
		},
		"info-secure.txt": func(w *bytes.Buffer) error { renderInfo(w, query.Info(secure)); return nil },
		"info-plain.txt":  func(w *bytes.Buffer) error { renderInfo(w, query.Info(plain)); return nil },
		"info.json":       func(w *bytes.Buffer) error { return writeJSON(w, query.Info(secure)) },
		// The local user and the env-mode push credentials, side by side.
		"info-env-push.txt": func(w *bytes.Buffer) error {
			renderInfo(w, query.Info(renderConfig(t, config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH_MODE": "env"})))
			return nil
		},
		// Paths with a space, a quote and an ESC sequence: quoted and
		// escaped, never printed raw.
		"info-odd-paths.txt": func(w *bytes.Buffer) error {
			renderInfo(w, query.Info(renderConfig(t, config.Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_STORAGE": "/srv/my builds/\x1b[2Jcr", "DEPLOY_DIR_IMAGES": "/srv/it's deploy", "TARGET_ARCH": "x86_64\x1b[0m"})))
			return nil
		},
		// A policy set, pruned on push, and the last prune recorded.
		"info-retention.txt": func(w *bytes.Buffer) error {
			d := query.Info(renderConfig(t, config.Vars{"CONTAINER_REGISTRY_RETENTION_KEEP": "5", "CONTAINER_REGISTRY_RETENTION_DAYS": "14",
				"CONTAINER_REGISTRY_RETENTION_PROTECT": "latest release-*", "CONTAINER_REGISTRY_RETENTION_ON_PUSH": "1"}))
			d.LastPrune = &runstate.PruneRecord{At: time.Date(2026, 12, 7, 23, 41, 0, 0, time.UTC), Policy: d.Retention, Removed: true,
				Images: 2, Tags: 7, Kept: 12, Bytes: 48 << 20}
			renderInfo(w, d)
			return nil
		},
		"push-nothing-odd-roots.txt": func(w *bytes.Buffer) error {
			renderPushSummary(w, &push.Summary{Nothing: true, Roots: []string{"/srv/a b", "/srv/\x1b]0;title\x07"}})
			return nil
		},
		"delete.txt": func(w *bytes.Buffer) error {
			renderDelete(w, "/srv/cr/container-registry.sh", &remove.Result{Repo: "yocto/app", Tag: "v1", Digest: digestA.String(), Pruned: []string{digestA.String()}})
			return nil
		},
		"delete-prune-failed.txt": func(w *bytes.Buffer) error {
			renderDelete(w, "/srv/cr/container-registry.sh", &remove.Result{Repo: "yocto/app", Tag: "v1", Digest: digestA.String(), PruneErr: errors.New("listing the remaining tags: 500")})
			return nil
		},
		"import.txt": func(w *bytes.Buffer) error {
			renderImport(w, plain, &importer.Result{Source: "oci:/x", Name: "alpine", Repo: "yocto/alpine", Tag: "3.19", Platforms: "linux/amd64, linux/arm64", Digest: digestA.String()})
			return nil
		},
		"verify-ok.txt": func(w *bytes.Buffer) error {
			renderVerify(w, "/srv/cr/data", &verify.Report{Repositories: 2, Tags: 3, Manifests: 6, Blobs: 9, Bytes: 12345})
			return nil
		},
		"verify-problems.txt": func(w *bytes.Buffer) error {
			renderVerify(w, "/srv/cr/data", &verify.Report{Repositories: 1, Tags: 1, Manifests: 1, Blobs: 2, Bytes: 10,
				Orphans: []verify.Orphan{{Digest: digestA.String(), Bytes: 4}}, OrphanBytes: 4, Problems: []string{"yocto/app:v1: manifest sha256:00 missing"}})
			return nil
		},
		"verify.json": func(w *bytes.Buffer) error {
			return writeJSON(w, &verify.Report{Repositories: 1, Orphans: []verify.Orphan{}, Problems: []string{}})
		},
		"push.txt": func(w *bytes.Buffer) error {
			r := &pushRenderer{w: w}
			for _, e := range []any{
				push.Note{Text: "not a git repository; no sha tag"},
				push.BrokenBuild{Name: "bad", Machine: "qemuarm64", Reason: "index.json: unexpected end of JSON input"},
				push.Started{URL: "localhost:5000", Namespace: "yocto", Tags: []string{"20260112-143022", "latest"}, Arch: true, AuthSource: "the local registry (user yocto, /srv/cr/auth/password)"},
				push.ManifestStarted{Image: "app", Platform: "linux/arm64", Machine: "qemuarm64", Dir: "/d/app-oci"},
				push.Progress{Sent: 50, Total: 100, Rate: 10}, // no bar without a terminal
				push.BlobsDone{Uploaded: 2, Sent: 2048, Present: 1, PresentBytes: 10},
				push.ManifestDone{Digest: digestA},
				push.DuplicateBuild{Image: "app", Platform: "linux/arm64", Machine: "qemuarm64-alt"},
				push.TagWritten{URL: "localhost:5000", Repo: "yocto/app", Tag: "latest", Digest: digestA, Platforms: []string{"amd64", "arm64"}},
				push.TagWritten{URL: "localhost:5000", Repo: "yocto/app", Tag: "v1", Digest: digestA, Platforms: []string{"arm64"}, Unchanged: true},
				push.ImageFailed{Image: "other", Err: errors.New("uploading blob: 500")},
				push.ArtifactAttached{Attached: push.Attached{Image: "app", Platform: "linux/arm64", File: "app-qemuarm64.rootfs-20260112143022.spdx.json", ArtifactType: deploy.ArtifactSBOM, Digest: digestA, Fallback: true}},
				push.ArtifactAttached{Attached: push.Attached{Image: "app", Platform: "linux/arm64", File: "app-qemuarm64.rootfs-20260112143022.manifest", ArtifactType: deploy.ArtifactManifest, Digest: digestA, Unchanged: true}},
				push.AttachFailed{Image: "app", Platform: "linux/arm64", Err: errors.New("putting artifact manifest: 400 Bad Request")},
				push.Remerged{Tag: "latest"},
			} {
				r.Emit(e)
			}
			renderPushSummary(w, &push.Summary{Pushed: true, Images: 1, Manifests: 1, Tags: 2, Uploaded: 2048, Skipped: 10, Elapsed: 1500 * time.Millisecond,
				OlderBuilds: []deploy.Skipped{{Dir: "/d/app-20260101-oci", Machine: "qemuarm64", Reason: "older than 20260112"}}, Catalog: []string{"yocto/app"},
				Attached: []push.Attached{
					{Image: "app", Platform: "linux/arm64", File: "app-qemuarm64.rootfs-20260112143022.spdx.json", ArtifactType: deploy.ArtifactSBOM, Digest: digestA},
					{Image: "app", Platform: "linux/arm64", File: "app-qemuarm64.rootfs-20260112143022.manifest", ArtifactType: deploy.ArtifactManifest, Digest: digestA, Unchanged: true},
				}})
			return nil
		},
		"push-progress.txt": func(w *bytes.Buffer) error {
			r := &pushRenderer{w: w, tty: true}
			r.Emit(push.Progress{Sent: 50 << 20, Total: 100 << 20, Rate: 10 << 20})
			r.Emit(push.Progress{Sent: 100 << 20, Total: 100 << 20, Rate: 12 << 20, Done: true})
			return nil
		},
		// Two images pushed at once on a terminal: each image's block of
		// lines comes whole (the push emits it when the image is done),
		// and the one bar of the whole push makes room for it and is
		// drawn again below.
		"push-blocks-tty.txt": func(w *bytes.Buffer) error {
			r := &pushRenderer{w: w, tty: true}
			block := func(image, arch string) []any {
				return []any{
					push.ManifestStarted{Image: image, Platform: "linux/" + arch, Machine: "qemu" + arch, Dir: "/d/" + image + "-oci"},
					push.BlobsDone{Uploaded: 2, Sent: 2048, Present: 1, PresentBytes: 10},
					push.ManifestDone{Digest: digestA},
					push.TagWritten{URL: "localhost:5000", Repo: "yocto/" + image, Tag: "latest", Digest: digestA, Platforms: []string{arch}},
				}
			}
			r.Emit(push.Started{URL: "localhost:5000", Namespace: "yocto", Tags: []string{"latest"}})
			r.Emit(push.Progress{Sent: 10 << 20, Total: 100 << 20, Rate: 10 << 20})
			for _, e := range block("app", "arm64") {
				r.Emit(e)
			}
			r.Emit(push.Progress{Sent: 60 << 20, Total: 100 << 20, Rate: 11 << 20})
			for _, e := range block("base", "amd64") {
				r.Emit(e)
			}
			r.Emit(push.Progress{Sent: 100 << 20, Total: 100 << 20, Rate: 12 << 20, Done: true})
			renderPushSummary(w, &push.Summary{Pushed: true, Images: 2, Manifests: 2, Tags: 2, Uploaded: 4096, Skipped: 20, Elapsed: 1500 * time.Millisecond})
			return nil
		},
		"push-nothing.txt": func(w *bytes.Buffer) error {
			renderPushSummary(w, &push.Summary{Nothing: true, Roots: []string{"/d/images"}})
			renderPushSummary(w, &push.Summary{Nothing: true})
			return nil
		},
	}
	for name, render := range cases {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := render(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, b.String())
		})
	}
}
