package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// requestLog serves a test registry and keeps every request it answers
// as "METHOD path?query".
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func newCountingRegistry(t *testing.T) (string, *requestLog) {
	t.Helper()
	app, _ := testreg.App(t)
	log := &requestLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.mu.Lock()
		log.reqs = append(log.reqs, r.Method+" "+r.URL.RequestURI())
		log.mu.Unlock()
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), log
}

// count returns how many requests have method and a URI containing
// every one of parts, and forgets nothing.
func (l *requestLog) count(method string, parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, r := range l.reqs {
		if !strings.HasPrefix(r, method+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

func (l *requestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.reqs, "\n")
}

// A new blob costs a POST (which asks to mount it from its own
// repository: the check whether the registry has it) and one monolithic
// PUT, no HEAD and no PATCH; the run pings the registry once, whatever the
// number of images; a re-push asks once per manifest and sends no blob
// request at all.
func TestPushRequestsPerBlob(t *testing.T) {
	host, log := newCountingRegistry(t)
	root := t.TempDir()
	var builds []sample.Build
	for _, b := range sample.DefaultBuilds() {
		b.NoDocuments = true
		builds = append(builds, b)
	}
	if _, err := sample.WriteTree(root, builds); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, host, root)
	var out events.Recorder
	sum, err := Push(context.Background(), target(t, c), Options{Strategy: "latest", Events: &out})
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	if sum.Images != 2 || sum.Manifests != 4 {
		t.Fatalf("summary %+v", sum)
	}
	// 4 manifests of a config and two layers each: 12 blobs, the base
	// layer of an image differs by architecture, so none is shared.
	const blobs = 12
	checks := []struct {
		what string
		got  int
		want int
	}{
		{"pings (GET /v2/)", pings(log), 1},
		{"blob HEADs", log.count("HEAD", "/blobs/sha256:"), 0},
		{"upload sessions (POST)", log.count("POST", "/blobs/uploads/"), blobs},
		{"POSTs asking to mount from their own repository", log.count("POST", "/blobs/uploads/", "mount="), blobs},
		{"monolithic PUTs", log.count("PUT", "/blobs/uploads/", "digest=sha256"), blobs},
		{"PATCHes", log.count("PATCH"), 0},
		{"manifest PUTs by digest", log.count("PUT", "/manifests/sha256:"), 4},
		{"index PUTs", log.count("PUT", "/manifests/latest"), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d\n%s", c.what, c.got, c.want, log)
		}
	}
	log.reset()
	if sum, err := Push(context.Background(), target(t, c), Options{Strategy: "latest", Events: &out}); err != nil || sum.Uploaded != 0 {
		t.Fatalf("re-push: %+v %v", sum, err)
	}
	if n := pings(log); n != 1 {
		t.Errorf("re-push pinged %d times, want 1\n%s", n, log)
	}
	if n := log.count("HEAD", "/blobs/") + log.count("POST") + log.count("PUT"); n != 0 {
		t.Errorf("re-push sent %d blob or write requests, want none\n%s", n, log)
	}
	if n := log.count("HEAD", "/manifests/sha256:"); n != 4 {
		t.Errorf("re-push asked for %d manifests, want 4\n%s", n, log)
	}
}

func pings(l *requestLog) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if r == "GET /v2/" {
			n++
		}
	}
	return n
}

// writeImage writes a deploy layout of an image of layers (plus a small
// one of its own) for machine qemux86-64 below root, with its -latest-oci
// link.
func writeImage(t *testing.T, root, name string, layers ...v1.Layer) {
	t.Helper()
	own, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, append(layers, own)...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "x86_64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(root, "qemux86-64")
	base := name + "-qemux86-64.rootfs-20260108123456-oci"
	if err := sample.WriteLayout(filepath.Join(mdir, base), img, "latest"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(mdir, name+"-latest-oci")); err != nil {
		t.Fatal(err)
	}
}

// Images that share a layer, pushed at once: the layer is uploaded once
// and mounted into the other repositories, every image is complete, and
// the bytes uploaded are exactly the bytes of the blobs sent.
func TestPushSharedLayersAtOnce(t *testing.T) {
	host, log := newCountingRegistry(t)
	root := t.TempDir()
	shared, err := random.Layer(64<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	for i := range n {
		writeImage(t, root, fmt.Sprintf("img%d", i), shared)
	}
	c := testConfig(t, host, root)
	var out events.Recorder
	sum, err := Push(context.Background(), target(t, c), Options{Strategy: "latest", Events: &out, Jobs: 2})
	if err != nil || sum.Images != n {
		t.Fatalf("push: %+v %v\n%s", sum, err, out.String())
	}
	sd, _ := shared.Digest()
	if got := log.count("PUT", "/blobs/uploads/", "digest="+url.QueryEscape(sd.String())); got != 1 {
		t.Errorf("shared layer uploaded %d times, want once\n%s", got, log)
	}
	// One image asks its own repository (which lacks it) and uploads it;
	// the others mount it from that one.
	if got := log.count("POST", "mount="+url.QueryEscape(sd.String())); got != n {
		t.Errorf("shared layer: %d mount requests, want %d\n%s", got, n, log)
	}
	// What went out, exactly: every distinct blob once (the shared layer
	// was mounted, not sent again).
	var want int64
	seen := map[v1.Hash]bool{}
	for i := range n {
		img, err := readLayoutImage(filepath.Join(root, "qemux86-64", fmt.Sprintf("img%d-qemux86-64.rootfs-20260108123456-oci", i)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				want += d.Size
			}
		}
	}
	if sum.Uploaded != want {
		t.Errorf("uploaded %d bytes, want %d (every distinct blob once)", sum.Uploaded, want)
	}
	for i := range n {
		tag := fmt.Sprintf("%s/yocto/img%d:latest", host, i)
		if _, plats := indexAt(t, tag); len(plats) != 1 {
			t.Errorf("%s: %v", tag, plats)
		}
	}
}

// One image whose layout lost a blob fails; the others are pushed all
// the same, and the failure names it.
func TestPushOneFailingImage(t *testing.T) {
	host, _ := newCountingRegistry(t)
	root := t.TempDir()
	const n = 5
	for i := range n {
		writeImage(t, root, fmt.Sprintf("img%d", i))
	}
	// img2 loses its layer file (its manifest and config still load).
	layout := filepath.Join(root, "qemux86-64", "img2-qemux86-64.rootfs-20260108123456-oci")
	img, err := readLayoutImage(layout)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	if err := os.Remove(filepath.Join(layout, "blobs", "sha256", ld.Hex)); err != nil {
		t.Fatal(err)
	}
	c := testConfig(t, host, root)
	var out events.Recorder
	sum, err := Push(context.Background(), target(t, c), Options{Strategy: "latest", Events: &out})
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Names) != 1 || fe.Names[0] != "img2" {
		t.Fatalf("err %v, want a failure of img2 alone\n%s", err, out.String())
	}
	if sum.Images != n-1 || sum.Tags != n-1 {
		t.Fatalf("summary %+v", sum)
	}
	for i := range n {
		if i == 2 {
			continue
		}
		indexAt(t, fmt.Sprintf("%s/yocto/img%d:latest", host, i))
	}
}

// The events of the images pushed at once come as one block per image:
// once another image's events start, the earlier image has none left.
func TestPushEventsInBlocks(t *testing.T) {
	reg := testreg.New(t)
	root := t.TempDir()
	const n = 8
	for i := range n {
		writeImage(t, root, fmt.Sprintf("img%d", i))
	}
	c := testConfig(t, reg.Host, root)
	var out events.Recorder
	if _, err := Push(context.Background(), target(t, c), Options{Strategy: "timestamp latest", Events: &out, Now: time.Now(), Progress: true}); err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	done := map[string]bool{}
	current := ""
	progress := 0
	for _, e := range out.Events() {
		var im string
		switch e := e.(type) {
		case ManifestStarted:
			im = e.Image
		case TagWritten:
			im = strings.TrimPrefix(e.Repo, "yocto/")
		case Progress:
			progress++
			continue
		default:
			continue
		}
		if im != current {
			if done[im] {
				t.Fatalf("events of %s resume after another image's:\n%s", im, out.String())
			}
			done[current] = true
			current = im
		}
	}
	if len(done) != n || progress == 0 {
		t.Fatalf("%d image blocks, %d progress events\n%s", len(done), progress, out.String())
	}
}

// readLayoutImage reads the one image of the OCI layout at dir.
func readLayoutImage(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		return nil, fmt.Errorf("%s: want one manifest (%v)", dir, err)
	}
	return idx.Image(im.Manifests[0].Digest)
}

// A registry that hands out bearer tokens (scoped to repositories) gets
// no transport shared by every repository: push sets up a client per
// repository, as ggcr does, and completes.
func TestPushBearerRegistry(t *testing.T) {
	app, _ := testreg.App(t)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"token":"t0k3n"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer t0k3n" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		app.ServeHTTP(w, r)
	}))
	defer srv.Close()
	root := t.TempDir()
	for i := range 3 {
		writeImage(t, root, fmt.Sprintf("img%d", i))
	}
	c := testConfig(t, strings.TrimPrefix(srv.URL, "http://"), root)
	tg, err := registry.New(c, "container-registry.sh", &regauth.Resolved{Auth: &authn.Basic{Username: "u", Password: "p"}, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var out events.Recorder
	sum, err := Push(context.Background(), tg, Options{Strategy: "latest", Events: &out})
	if err != nil || sum.Images != 3 {
		t.Fatalf("push: %+v %v\n%s", sum, err, out.String())
	}
	if tg.Authorized() != nil {
		t.Error("a transport shared by every repository of a registry of bearer tokens")
	}
}
