package retention

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/gc"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

func TestClassify(t *testing.T) {
	long := strings.Repeat("a", 129)
	for tag, want := range map[string]Kind{
		"20260112-143022":                   KindTimestamp,
		"20261340-000000":                   KindOther, // month 13: not a timestamp
		"2026011-143022":                    KindOther,
		"abc1234":                           KindSha,
		"abc1234def":                        KindSha,
		strings.Repeat("f", 40):             KindSha,
		strings.Repeat("f", 41):             KindOther,
		"ABC1234":                           KindOther, // git writes lowercase
		"abc12":                             KindOther, // too short for a commit
		"1.2.3":                             KindVersion,
		"1.2.3-rc1":                         KindVersion,
		"1.0-r0":                            KindVersion,
		"1.2.3.4":                           KindVersion,
		"1.2":                               KindMoving,
		"1":                                 KindMoving,
		"2024-fixes":                        KindOther, // a branch name starting with a digit
		"latest":                            KindOther,
		"main":                              KindOther,
		"release-1":                         KindOther,
		"v1.2.3":                            KindOther, // a name given with --tag
		"sha256-" + strings.Repeat("0", 64): KindReferrers,
		"sha256-" + strings.Repeat("0", 64) + ".sig": KindSignature,
		"1.2.3.att":          KindSignature,
		"build.sbom":         KindSignature,
		"":                   KindInvalid,
		"-x":                 KindInvalid,
		".hidden":            KindInvalid,
		"../20260112-143022": KindInvalid,
		"a b":                KindInvalid,
		"20260112-143022\n":  KindInvalid,
		long:                 KindInvalid,
	} {
		if got, _ := Classify(tag); got != want {
			t.Errorf("Classify(%q) = %s, want %s", tag, got, want)
		}
	}
	if _, ts := Classify("20260112-143022"); !ts.Equal(time.Date(2026, 1, 12, 14, 30, 22, 0, time.Local)) {
		t.Errorf("timestamp time %v", ts)
	}
}

// tagStore is a storage holding tag links only (Decide reads no manifest).
type tagStore struct {
	d    driver.StorageDriver
	root string
}

func newTagStore(t *testing.T) *tagStore {
	t.Helper()
	root := t.TempDir()
	d, err := regstore.OpenDriver(context.Background(), "filesystem", map[string]any{"rootdirectory": root})
	if err != nil {
		t.Fatal(err)
	}
	return &tagStore{d: d, root: root}
}

// tag writes repo:tag pointing at the digest of content, written at
// (when not zero).
func (s *tagStore) tag(t *testing.T, repo, tag, content string, at time.Time) {
	t.Helper()
	p := regstore.TagCurrentLink(repo, tag)
	if err := s.d.PutContent(context.Background(), p, []byte(digest.FromString(content).String())); err != nil {
		t.Fatal(err)
	}
	if !at.IsZero() {
		if err := os.Chtimes(filepath.Join(s.root, p), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func decisions(p *Plan) map[string]string {
	out := map[string]string{}
	for _, r := range p.Repos {
		for _, b := range r.Builds {
			for _, tg := range b.Tags {
				verb := "keep"
				if b.Prune {
					verb = "prune"
				}
				out[r.Name+":"+tg.Name] = verb + ": " + tg.Reason
			}
		}
	}
	return out
}

func check(t *testing.T, p *Plan, want map[string]string) {
	t.Helper()
	got := decisions(p)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %q", k, got[k])
		}
	}
}

func TestDecide(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)
	s := newTagStore(t)
	const r = "yocto/app"
	// Four builds by timestamp (b4 newest, with latest), each with an
	// arch tag; a release build given by name; a sha build dated by its
	// link; a referrers tag and a signature of their own.
	for i, ts := range []string{"20260110-000000", "20260201-000000", "20260220-000000", "20260228-000000"} {
		build := fmt.Sprint("b", i+1)
		s.tag(t, r, ts, build, time.Time{})
		s.tag(t, r, ts+"-aarch64", build+"-arm64", time.Time{})
	}
	s.tag(t, r, "latest", "b4", time.Time{})
	s.tag(t, r, "1.0.0", "rel", now.Add(-60*24*time.Hour))
	s.tag(t, r, "release-1", "rel", now.Add(-60*24*time.Hour))
	s.tag(t, r, "abc1234", "sha", now.Add(-30*24*time.Hour))
	s.tag(t, r, "1.2", "sha", now.Add(-30*24*time.Hour)) // a moving version on an old build
	s.tag(t, r, "sha256-"+strings.Repeat("0", 64), "refs", now)
	s.tag(t, r, "abc1234.sig", "sig", now.Add(-90*24*time.Hour))
	s.tag(t, "yocto/other", "20250101-000000", "o1", time.Time{})

	t.Run("off", func(t *testing.T) {
		p, err := Decide(ctx, s.d, Policy{Protect: []string{"latest"}}, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Pruned() != 0 || p.Kept() != 16 {
			t.Fatalf("a policy without limits prunes %d, keeps %d", p.Pruned(), p.Kept())
		}
	})
	t.Run("keep 2", func(t *testing.T) {
		p, err := Decide(ctx, s.d, Policy{Keep: 2, Protect: []string{"latest"}}, now, []string{r})
		if err != nil {
			t.Fatal(err)
		}
		check(t, p, map[string]string{
			r + ":20260228-000000":                   "keep: newest 2",
			r + ":20260228-000000-aarch64":           "keep: newest 2",
			r + ":latest":                            "keep: protected by pattern latest",
			r + ":20260220-000000":                   "keep: newest 2",
			r + ":20260220-000000-aarch64":           "keep: newest 2",
			r + ":20260201-000000":                   "prune: beyond the newest 2",
			r + ":20260201-000000-aarch64":           "prune: beyond the newest 2",
			r + ":20260110-000000":                   "prune: beyond the newest 2",
			r + ":20260110-000000-aarch64":           "prune: beyond the newest 2",
			r + ":abc1234":                           "keep: tag 1.2 is not a build tag",
			r + ":1.2":                               "keep: not a build tag",
			r + ":1.0.0":                             "keep: tag release-1 is not a build tag",
			r + ":release-1":                         "keep: not a build tag",
			r + ":sha256-" + strings.Repeat("0", 64): "keep: not a build tag",
			r + ":abc1234.sig":                       "keep: not a build tag",
		})
	})
	t.Run("days 25 protect 1.*", func(t *testing.T) {
		p, err := Decide(ctx, s.d, Policy{Days: 25, Protect: []string{"1.*"}}, now, []string{r})
		if err != nil {
			t.Fatal(err)
		}
		check(t, p, map[string]string{
			r + ":20260228-000000":                   "keep: younger than 25 days",
			r + ":20260228-000000-aarch64":           "keep: younger than 25 days",
			r + ":latest":                            "keep: not a build tag",
			r + ":20260220-000000":                   "keep: younger than 25 days",
			r + ":20260220-000000-aarch64":           "keep: younger than 25 days",
			r + ":20260201-000000":                   "prune: older than 25 days",
			r + ":20260201-000000-aarch64":           "prune: older than 25 days",
			r + ":20260110-000000":                   "prune: older than 25 days",
			r + ":20260110-000000-aarch64":           "prune: older than 25 days",
			r + ":abc1234":                           "keep: protected by pattern 1.* (tag 1.2)",
			r + ":1.2":                               "keep: protected by pattern 1.*",
			r + ":1.0.0":                             "keep: protected by pattern 1.*",
			r + ":release-1":                         "keep: not a build tag",
			r + ":sha256-" + strings.Repeat("0", 64): "keep: not a build tag",
			r + ":abc1234.sig":                       "keep: not a build tag",
		})
	})
	t.Run("keep 1 and days 20, nothing protected", func(t *testing.T) {
		p, err := Decide(ctx, s.d, Policy{Keep: 1, Days: 20}, now, []string{r, "yocto/other"})
		if err != nil {
			t.Fatal(err)
		}
		got := decisions(p)
		for k, w := range map[string]string{
			r + ":latest":                 "keep: not a build tag",
			r + ":20260228-000000":        "keep: newest 1",
			r + ":20260220-000000":        "keep: younger than 20 days",
			r + ":20260201-000000":        "prune: beyond the newest 1 and older than 20 days",
			"yocto/other:20250101-000000": "keep: newest 1",
		} {
			if got[k] != w {
				t.Errorf("%s: %q, want %q", k, got[k], w)
			}
		}
	})
	t.Run("unknown image", func(t *testing.T) {
		if _, err := Decide(ctx, s.d, Policy{Keep: 1}, now, []string{"yocto/nothing"}); err == nil || !strings.Contains(err.Error(), "no image yocto/nothing") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("empty storage", func(t *testing.T) {
		p, err := Decide(ctx, newTagStore(t).d, Policy{Keep: 1}, now, nil)
		if err != nil || len(p.Repos) != 0 {
			t.Fatalf("%+v %v", p, err)
		}
	})
}

// Hostile tag names in storage are never pruned and never group with
// anything by accident.
func TestDecideHostileNames(t *testing.T) {
	ctx := context.Background()
	s := newTagStore(t)
	const r = "yocto/h"
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tag := range []string{"20200101-000000", "_20200101-000000", "-20200101-000000", "20200101-000000-r0", "...", "20200101-000000..sig", "20200101-000000-x86_64-"} {
		s.tag(t, r, tag, tag, old)
	}
	p, err := Decide(ctx, s.d, Policy{Keep: 1}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range p.Repos[0].Tags(true) {
		t.Errorf("pruned %q (%s)", tg.Name, tg.Reason)
	}
}

// image is a two-platform index with its platform manifests.
type pushed struct {
	idx  v1.ImageIndex
	arch v1.Image
}

func pushBuild(t *testing.T, host, repo, tag string) pushed {
	t.Helper()
	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	arch, _ := idx.Image(im.Manifests[0].Digest)
	aref, _ := name.ParseReference(host+"/"+repo+":"+tag+"-aarch64", name.Insecure)
	if err := remote.Write(aref, arch); err != nil {
		t.Fatal(err)
	}
	return pushed{idx: idx, arch: arch}
}

// A dry-run sweep over Without reports what the sweep after Apply
// removes: the pruned builds' manifests and blobs, nothing of the kept.
func TestWithoutAndApply(t *testing.T) {
	ctx := context.Background()
	app, d := testreg.App(t)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	const r = "yocto/app"
	pushBuild(t, host, r, "20260101-000000")
	pushBuild(t, host, r, "20260102-000000")
	newest := pushBuild(t, host, r, "20260103-000000")
	ref, _ := name.ParseReference(host+"/"+r+":latest", name.Insecure)
	if err := remote.WriteIndex(ref, newest.idx); err != nil {
		t.Fatal(err)
	}

	p, err := Decide(ctx, d, Policy{Keep: 1, Protect: []string{"latest"}}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pruned() != 4 || p.Kept() != 3 {
		t.Fatalf("pruned %d kept %d: %v", p.Pruned(), p.Kept(), decisions(p))
	}
	view := Without(d, p)
	for _, tg := range p.Repos[0].Tags(true) {
		if _, err := view.Stat(ctx, regstore.TagCurrentLink(r, tg.Name)); !regstore.IsNotFound(err) {
			t.Errorf("%s visible: %v", tg.Name, err)
		}
	}
	list, err := view.List(ctx, regstore.Tags(r))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, filepath.Base(e))
	}
	slices.Sort(names)
	if want := []string{"20260103-000000", "20260103-000000-aarch64", "latest"}; !slices.Equal(names, want) {
		t.Errorf("listed %v, want %v", names, want)
	}
	walked := 0
	if err := view.Walk(ctx, regstore.Tags(r), func(fi driver.FileInfo) error {
		if strings.Contains(fi.Path(), "/20260101-") || strings.Contains(fi.Path(), "/20260102-") {
			t.Errorf("walk reached %s", fi.Path())
		}
		walked++
		return nil
	}); err != nil || walked == 0 {
		t.Fatalf("walk: %d entries, %v", walked, err)
	}
	dry, err := gc.Sweep(ctx, view, gc.Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	// Two indexes, four platform manifests go; each index holds 2 images
	// of 2 layers (config + 2 layers + manifest) and its own manifest.
	if len(dry.Manifests) != 6 || len(dry.Blobs) != 2*(1+2*4) {
		t.Fatalf("dry run: %d manifests, %d blobs", len(dry.Manifests), len(dry.Blobs))
	}
	// The real storage still has everything.
	if full, err := gc.Sweep(ctx, d, gc.Options{DryRun: true, RemoveUntagged: true}); err != nil || !full.Empty() {
		t.Fatalf("before Apply: %+v %v", full, err)
	}
	removed, err := Apply(ctx, d, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed[r]) != 4 {
		t.Fatalf("removed %v", removed)
	}
	after, err := gc.Sweep(ctx, d, gc.Options{RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if after.Bytes != dry.Bytes || len(after.Blobs) != len(dry.Blobs) || len(after.Manifests) != len(dry.Manifests) {
		t.Fatalf("removed %d bytes (%d blobs), the dry run over Without said %d (%d)", after.Bytes, len(after.Blobs), dry.Bytes, len(dry.Blobs))
	}
	for _, tag := range []string{"latest", "20260103-000000", "20260103-000000-aarch64"} {
		ref, _ := name.ParseReference(host+"/"+r+":"+tag, name.Insecure)
		if _, err := remote.Get(ref); err != nil {
			t.Errorf("%s after prune: %v", tag, err)
		}
	}
	// Applying again removes nothing (every tag is gone); a tag pushed
	// again meanwhile to another build is left alone.
	ref, _ = name.ParseReference(host+"/"+r+":20260101-000000", name.Insecure)
	if err := remote.WriteIndex(ref, newest.idx); err != nil {
		t.Fatal(err)
	}
	removed, err = Apply(ctx, d, p)
	if err != nil || len(removed) != 0 {
		t.Fatalf("second Apply removed %v (%v)", removed, err)
	}
}
