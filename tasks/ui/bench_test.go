package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/manifest/ocischema"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/distribution/reference"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// benchSite is a site over in-memory storage holding repos repositories
// of tags tags each (one single-platform image per repository), built
// through distribution's storage API as pushes would.
func benchSite(b *testing.B, repos, tags int) *Site {
	b.Helper()
	ctx := context.Background()
	d := inmemory.New()
	ns, err := storage.NewRegistry(ctx, d, storage.EnableDelete)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pages(); err != nil {
		b.Fatal(err)
	}
	c := &config.Config{URL: "localhost:5000", TargetURL: "10.0.2.2:5000", UI: true, Storage: "/srv/registry"}
	s := &Site{c: c, cache: newCache(), ns: ns, driver: d}
	for i := range repos {
		name, _ := reference.WithName(fmt.Sprintf("yocto/image-%04d", i))
		repo, err := ns.Repository(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		cfgJSON := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.revision":"%07x"}},"rootfs":{"type":"layers","diff_ids":[]}}`, i)
		cfgDesc, err := repo.Blobs(ctx).Put(ctx, v1.MediaTypeImageConfig, []byte(cfgJSON))
		if err != nil {
			b.Fatal(err)
		}
		layer, err := repo.Blobs(ctx).Put(ctx, v1.MediaTypeImageLayerGzip, []byte(strings.Repeat("x", 1000+i)))
		if err != nil {
			b.Fatal(err)
		}
		m, err := ocischema.FromStruct(ocischema.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
			Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cfgDesc.Digest, Size: cfgDesc.Size},
			Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayerGzip, Digest: layer.Digest, Size: layer.Size}},
		})
		if err != nil {
			b.Fatal(err)
		}
		ms, _ := repo.Manifests(ctx)
		dgst, err := ms.Put(ctx, m)
		if err != nil {
			b.Fatal(err)
		}
		for t := range tags {
			if err := repo.Tags(ctx).Tag(ctx, fmt.Sprintf("20260108-%06d", t), v1.Descriptor{Digest: dgst, MediaType: v1.MediaTypeImageManifest}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

// BenchmarkIndexPage is the index page a browser gets for a registry of
// 1,000 repositories × 20 tags, cache warm (the first page: 250
// repositories, every one filtered and counted).
func BenchmarkIndexPage(b *testing.B) {
	s := benchSite(b, 1000, 20)
	h, err := s.Handler(http.NotFoundHandler(), nil)
	if err != nil {
		b.Fatal(err)
	}
	get := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/ui/", nil))
		if w.Code != 200 || !strings.Contains(w.Body.String(), "1000 of 1000 images") {
			b.Fatalf("status %d: %.300s", w.Code, w.Body.String())
		}
		return w.Body.Len()
	}
	b.ReportMetric(float64(get()), "bytes/page")
	for b.Loop() {
		get()
	}
}

// BenchmarkIndexAllRepos renders all 1,000 repositories × 20 tags into one
// page (what the index would be without paging), cache warm.
func BenchmarkIndexAllRepos(b *testing.B) {
	s := benchSite(b, 1000, 20)
	ctx := context.Background()
	d := &indexData{Page: 1, Pages: 1, Local: true}
	names, err := s.catalog(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range names {
		r, err := s.repo(ctx, n)
		if err != nil {
			b.Fatal(err)
		}
		d.Repos = append(d.Repos, r)
	}
	d.Matched, d.All = len(d.Repos), len(d.Repos)
	for b.Loop() {
		w := httptest.NewRecorder()
		s.render(w, "index", "Images", d, nil)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkIndexCold is the first index page after start (or after a push
// to every repository): every tag list and manifest read from storage.
func BenchmarkIndexCold(b *testing.B) {
	s := benchSite(b, 1000, 20)
	h, err := s.Handler(http.NotFoundHandler(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s.cache = newCache()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/ui/", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
