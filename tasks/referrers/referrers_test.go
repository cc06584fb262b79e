package referrers

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	// Register the manifest schemas with distribution.
	_ "github.com/distribution/distribution/v3/manifest/ocischema"
)

// fixture is a filesystem storage with one repository, written through
// distribution's storage API as the registry writes it.
type fixture struct {
	ctx   context.Context
	store *Store
	repo  distribution.Repository
	ms    distribution.ManifestService
	empty v1.Descriptor
}

const repoName = "bench/refs"

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	d := filesystem.New(filesystem.DriverParameters{RootDirectory: tb.TempDir(), MaxThreads: 100})
	reg, err := storage.NewRegistry(ctx, d)
	if err != nil {
		tb.Fatal(err)
	}
	named, _ := reference.WithName(repoName)
	repo, err := reg.Repository(ctx, named)
	if err != nil {
		tb.Fatal(err)
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := New(ctx, d)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{ctx: ctx, store: store, repo: repo, ms: ms}
	f.empty, err = repo.Blobs(ctx).Put(ctx, "application/vnd.oci.empty.v1+json", []byte("{}"))
	if err != nil {
		tb.Fatal(err)
	}
	f.empty.MediaType = "application/vnd.oci.empty.v1+json"
	return f
}

// put stores a manifest (recording it first when it has a subject, as
// serve does) and tags it when tag is set.
func (f *fixture) put(tb testing.TB, m map[string]any, tag string, record bool) v1.Descriptor {
	tb.Helper()
	m["schemaVersion"], m["mediaType"] = 2, v1.MediaTypeImageManifest
	m["config"], m["layers"] = f.empty, []v1.Descriptor{f.empty}
	body, _ := json.Marshal(m)
	dm, _, err := distribution.UnmarshalManifest(v1.MediaTypeImageManifest, body)
	if err != nil {
		tb.Fatal(err)
	}
	dgst := digest.FromBytes(body)
	if s, ok := m["subject"].(v1.Descriptor); ok && record {
		if err := f.store.Add(f.ctx, repoName, s.Digest, dgst); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := f.ms.Put(f.ctx, dm); err != nil {
		tb.Fatal(err)
	}
	desc := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: dgst, Size: int64(len(body))}
	if tag != "" {
		if err := f.repo.Tags(f.ctx).Tag(f.ctx, tag, desc); err != nil {
			tb.Fatal(err)
		}
	}
	return desc
}

func (f *fixture) referrer(tb testing.TB, subject v1.Descriptor, at string, i int) v1.Descriptor {
	return f.put(tb, map[string]any{"artifactType": at, "subject": subject, "annotations": map[string]string{"n": fmt.Sprint(i)}}, "", true)
}

// Listing keeps only stored manifests that name the subject, in digest
// order, filtered and paged; a record without its manifest lists nothing.
func TestList(t *testing.T) {
	f := newFixture(t)
	img := f.put(t, map[string]any{"annotations": map[string]string{"image": "1"}}, "v1", false)
	other := f.put(t, map[string]any{"annotations": map[string]string{"image": "2"}}, "v2", false)
	want := map[digest.Digest]string{}
	for i := range 5 {
		at := []string{"application/spdx+json", "text/plain"}[i%2]
		want[f.referrer(t, img, at, i).Digest] = at
	}
	f.referrer(t, other, "text/plain", 9)
	// A PUT that never stored its manifest, and a record naming the
	// wrong subject: neither is listed.
	if err := f.store.Add(f.ctx, repoName, img.Digest, digest.FromString("never stored")); err != nil {
		t.Fatal(err)
	}
	wrong := f.put(t, map[string]any{"subject": other}, "", false)
	if err := f.store.Add(f.ctx, repoName, img.Digest, wrong.Digest); err != nil {
		t.Fatal(err)
	}

	got := map[digest.Digest]string{}
	var last digest.Digest
	for pages := 1; ; pages++ {
		page, more, err := f.store.List(f.ctx, repoName, img.Digest, Query{N: 2, Last: last})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if d.Digest <= last {
				t.Errorf("page %d: %s out of order", pages, d.Digest)
			}
			got[d.Digest], last = d.ArtifactType, d.Digest
			if d.Annotations["n"] == "" || d.MediaType != v1.MediaTypeImageManifest || d.Size == 0 {
				t.Errorf("descriptor %+v", d)
			}
		}
		if !more {
			if pages != 3 {
				t.Errorf("%d pages of 2 for 5 referrers", pages)
			}
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("referrers %v, want %v", got, want)
	}
	page, _, err := f.store.List(f.ctx, repoName, img.Digest, Query{N: 100, ArtifactType: "application/spdx+json"})
	if err != nil || len(page) != 3 {
		t.Errorf("filtered: %d, %v", len(page), err)
	}
	page, more, err := f.store.List(f.ctx, repoName, digest.FromString("no subject"), Query{N: 100})
	if err != nil || page == nil || len(page) != 0 || more {
		t.Errorf("unknown subject: %v, %v, %v", page, more, err)
	}
	n := 0
	if err := f.store.Walk(f.ctx, func(Record) error { n++; return nil }); err != nil || n != 8 {
		t.Errorf("Walk: %d records, %v", n, err)
	}
}

// BenchmarkList lists the referrers of one image in a repository of 1,000
// tagged images with two referrers each (2,000 referrers), and all 2,000
// referrers of an image that has that many, as the referrers API does
// (the descriptors cached after the first listing, as in a running serve).
func BenchmarkList(b *testing.B) {
	f := newFixture(b)
	var imgs []v1.Descriptor
	for i := range 1000 {
		img := f.put(b, map[string]any{"annotations": map[string]string{"image": fmt.Sprint(i)}}, fmt.Sprintf("t%04d", i), false)
		f.referrer(b, img, "application/spdx+json", 0)
		f.referrer(b, img, "text/plain", 1)
		imgs = append(imgs, img)
	}
	b.Run("one-image-of-1000", func(b *testing.B) {
		i := 0
		for b.Loop() {
			page, _, err := f.store.List(f.ctx, repoName, imgs[i%len(imgs)].Digest, Query{N: 1000})
			if err != nil || len(page) != 2 {
				b.Fatal(len(page), err)
			}
			i++
		}
	})
	one := f.put(b, map[string]any{"annotations": map[string]string{"image": "one"}}, "one", false)
	for i := range 2000 {
		f.referrer(b, one, "application/spdx+json", i)
	}
	b.Run("2000-of-one-image", func(b *testing.B) {
		for b.Loop() {
			page, _, err := f.store.List(f.ctx, repoName, one.Digest, Query{N: 10000})
			if err != nil || len(page) != 2000 {
				b.Fatal(len(page), err)
			}
		}
	})
}
