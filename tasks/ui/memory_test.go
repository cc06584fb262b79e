package ui

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// hostileImage is a small image whose config carries a label of size
// bytes (issue 25: a 4 MB label).
func hostileImage(t *testing.T, size int, salt string) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"huge": strings.Repeat("x", size), "salt": salt}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMemoryUnderHostileStore (issue 25, items 1 and 4): an index that
// lists one manifest 250 times, whose config carries a 4 MB label, and 150
// tags of manifests sharing one config with a 4 MB label. Opening the
// pages must neither keep nor answer more than a bounded amount: before,
// serve grew by gigabytes and answered a gigabyte of HTML.
func TestMemoryUnderHostileStore(t *testing.T) {
	const (
		label    = 4_000_000
		entries  = 250
		tags     = 150
		maxHeap  = 100 << 20 // retained after the pages, after GC
		maxPage  = 4 << 20   // HTML of one page
		indexTag = "yocto/hostile:index"
	)
	logrus.SetLevel(logrus.WarnLevel)
	site, srv := testServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	img := hostileImage(t, label, "index")
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for range entries {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	}
	ref, _ := name.ParseReference(host+"/"+indexTag, name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	shared := hostileImage(t, label, "shared")
	for i := range tags {
		// Distinct manifests (an annotation each) sharing one config.
		im := mutate.Annotations(shared, map[string]string{"n": fmt.Sprint(i)}).(v1.Image)
		r, _ := name.ParseReference(fmt.Sprintf("%s/yocto/shared:t%d", host, i), name.Insecure)
		if err := remote.Write(r, im); err != nil {
			t.Fatal(err)
		}
	}

	before := heapInUse()
	for _, path := range []string{"/ui/", "/ui/" + indexTag, "/ui/yocto/shared:t0", "/ui/yocto/shared:t149", "/ui/?q=shared"} {
		code, body := get(t, srv.URL+path)
		if code != 200 {
			t.Fatalf("GET %s: %d\n%.400s", path, code, body)
		}
		if len(body) > maxPage {
			t.Errorf("GET %s: %d bytes of HTML, want at most %d", path, len(body), maxPage)
		}
		if path == "/ui/"+indexTag && (!strings.Contains(body, "186 more manifests of this index not shown") || strings.Count(body, "[cut: 4000000 bytes in all]") != 1) {
			t.Errorf("GET %s: no note of what the page leaves out", path)
		}
		if strings.HasPrefix(path, "/ui/yocto/") && !strings.Contains(body, "[cut: 4000000 bytes in all]") {
			t.Errorf("GET %s: the long label is not cut with a note", path)
		}
	}
	after := heapInUse()
	if after > before && after-before > maxHeap {
		t.Errorf("the pages kept %d MiB, want at most %d MiB", (after-before)>>20, maxHeap>>20)
	}
	if used := site.cache.parsed.bytes(); used > cacheBytes {
		t.Errorf("cache holds %d bytes, over its budget", used)
	}

	// A deleted digest leaves the cache.
	r, _ := name.ParseReference(host+"/yocto/shared:t0", name.Insecure)
	d, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	if site.cache.getImage(digest.Digest(d.Digest.String())) == nil {
		t.Fatal("the image page did not cache its manifest")
	}
	dr, _ := name.ParseReference(host+"/yocto/shared@"+d.Digest.String(), name.Insecure)
	if err := remote.Delete(dr); err != nil {
		t.Fatal(err)
	}
	if site.cache.getImage(digest.Digest(d.Digest.String())) != nil {
		t.Error("a deleted manifest stays cached")
	}
	t.Logf("heap in use: %d MiB before the pages, %d MiB after", before>>20, after>>20)
}

// TestLRUBudget: the cache keeps at most its budget in bytes, least
// recently used out first, and forgets a deleted digest.
func TestLRUBudget(t *testing.T) {
	l := newLRU(100)
	d := func(i int) lruKey { return lruKey{kindConfig, digest.FromString(fmt.Sprint(i))} }
	for i := range 10 {
		l.put(d(i), i, 30)
		if i == 1 {
			l.get(d(0)) // 0 is now more recent than 1
		}
	}
	if l.bytes() > 100 {
		t.Fatalf("holds %d bytes", l.bytes())
	}
	if _, ok := l.get(d(9)); !ok {
		t.Error("the newest entry is gone")
	}
	l.put(d(99), 99, 101)
	if _, ok := l.get(d(99)); ok {
		t.Error("an entry larger than the budget was kept")
	}
	l.evict(d(9).d)
	if _, ok := l.get(d(9)); ok {
		t.Error("an evicted digest is still there")
	}
}
