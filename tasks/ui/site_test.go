package ui

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// testServer is distribution's application on in-memory storage with the
// site in front, wired as serve wires it.
func testServer(t *testing.T) (*Site, *httptest.Server) {
	t.Helper()
	return testServerFor(t, &config.Config{URL: "localhost:5000", TargetURL: "10.0.2.2:5000", UI: true, Storage: "/srv/registry"})
}

// testServerFor is testServer for the configuration c.
func testServerFor(t *testing.T, c *config.Config) (*Site, *httptest.Server) {
	t.Helper()
	cfg := &configuration.Configuration{Storage: configuration.Storage{
		"inmemory": configuration.Parameters{},
		"delete":   configuration.Parameters{"enabled": true},
	}}
	cfg.HTTP.Secret = "test"
	cfg.Log.AccessLog.Disabled = true
	s := New(c)
	var capture regstore.Capture
	capture.Wrap(s.Attach)
	app := handlers.NewApp(context.Background(), capture.Configure(cfg))
	h, err := s.Handler(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, srv
}

// push writes a random image to repo:tag of srv.
func push(t *testing.T, srv *httptest.Server, ref string) digest.Digest {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return digest.Digest(d.String())
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPagesFollowPushAndDelete: what the cache holds changes with every
// push and delete through the registry API.
func TestPagesFollowPushAndDelete(t *testing.T) {
	_, srv := testServer(t)
	if code, body := get(t, srv.URL+"/ui/"); code != 200 || !strings.Contains(body, "No images yet") {
		t.Fatalf("empty registry: %d\n%s", code, body)
	}
	push(t, srv, "yocto/app:one")
	if _, body := get(t, srv.URL+"/ui/"); !strings.Contains(body, `href="/ui/yocto/app:one"`) {
		t.Fatalf("after the first push:\n%s", body)
	}
	push(t, srv, "yocto/app:two")
	push(t, srv, "yocto/other:one")
	_, body := get(t, srv.URL+"/ui/")
	for _, want := range []string{`href="/ui/yocto/app:two"`, `href="/ui/yocto/other:one"`, "2 of 2 images"} {
		if !strings.Contains(body, want) {
			t.Errorf("after more pushes, index lacks %s:\n%s", want, body)
		}
	}
	ref, _ := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/yocto/app:one", name.Insecure)
	if err := remote.Delete(ref); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, srv.URL+"/ui/"); strings.Contains(body, "/ui/yocto/app:one") || !strings.Contains(body, "/ui/yocto/app:two") {
		t.Errorf("after deleting yocto/app:one:\n%s", body)
	}
	if code, _ := get(t, srv.URL+"/ui/yocto/app:one"); code != 404 {
		t.Errorf("image page of a deleted tag: %d", code)
	}
}

// artifacts is an Artifacts source as the referrers support provides one.
type artifacts struct {
	list []Artifact
	err  error
}

func (a artifacts) Artifacts(_ context.Context, repo string, subject digest.Digest) ([]Artifact, error) {
	return a.list, a.err
}

// TestArtifactsHook: the image page lists what the Artifacts source gives,
// escaped, and survives its failure.
func TestArtifactsHook(t *testing.T) {
	s, srv := testServer(t)
	push(t, srv, "yocto/app:1")
	if _, body := get(t, srv.URL+"/ui/yocto/app:1"); !strings.Contains(body, "Nothing attached") {
		t.Errorf("without a source:\n%s", body)
	}
	s.SetArtifacts(artifacts{list: []Artifact{{ArtifactType: "application/spdx+json", Title: "<b>sbom</b>", Size: 2048,
		Href: "/ui/-/artifact/yocto/app@sha256:00"}}})
	_, body := get(t, srv.URL+"/ui/yocto/app:1")
	for _, want := range []string{"application/spdx&#43;json", "&lt;b&gt;sbom&lt;/b&gt;", "2.0 KiB", `href="/ui/-/artifact/yocto/app@sha256:00"`} {
		if !strings.Contains(body, want) {
			t.Errorf("artifacts section lacks %s:\n%s", want, body)
		}
	}
	s.SetArtifacts(artifacts{err: errors.New("referrers store unreadable")})
	if code, body := get(t, srv.URL+"/ui/yocto/app:1"); code != 200 || !strings.Contains(body, "Could not list attached artifacts: referrers store unreadable") {
		t.Errorf("with a failing source: %d\n%s", code, body)
	}
}

// TestRoutes: what is not a page, and what the site leaves to the API.
func TestRoutes(t *testing.T) {
	_, srv := testServer(t)
	push(t, srv, "yocto/app:1")
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/", 302, ""},
		{"/ui", 302, ""},
		{"/ui/yocto/app", 302, ""},
		{"/ui/yocto/app:2", 404, "No image yocto/app:2"},
		{"/ui/Not_A_Repo:1", 404, "want /ui/&lt;repository&gt;:&lt;tag&gt;"},
		{"/ui/-/static/ui.css", 200, "prefers-color-scheme: dark"},
		{"/ui/-/static/nothing.js", 404, ""},
		{"/ui/-/registry", 200, "1 (1 tag)"},
		{"/v2/", 200, "{}"},
	} {
		code, body := get(t, srv.URL+c.path)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want %d with %q:\n%.400s", c.path, code, c.code, c.want, body)
		}
	}
	resp, err := http.Post(srv.URL+"/ui/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /ui/: %d", resp.StatusCode)
	}
	// CONTAINER_REGISTRY_UI=0: no site, every path is the API's.
	var none *Site
	h, err := none.Handler(http.NotFoundHandler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/ui/", nil))
	if w.Code != 404 || w.Header().Get("Content-Security-Policy") != "" {
		t.Errorf("/ui/ without a site: %d %v", w.Code, w.Header())
	}
}

// The registry page shows the retention policy and the last prune.
func TestRegistryPagePrune(t *testing.T) {
	c := &config.Config{URL: "localhost:5000", TargetURL: "10.0.2.2:5000", UI: true, Storage: t.TempDir(),
		Retention: config.Retention{Keep: 5, Protect: []string{"latest"}, OnPush: true}}
	_, srv := testServerFor(t, c)
	code, body := get(t, srv.URL+"/ui/-/registry")
	for _, want := range []string{"keep the newest 5 builds of every image; protected: latest; push prunes the images it pushed", "<th>Last prune</th><td>not recorded", " prune</code>"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("before a prune: %d, no %q in\n%s", code, want, body)
		}
	}
	if err := runstate.WritePruneRecord(c, runstate.PruneRecord{At: time.Date(2026, 12, 7, 23, 41, 0, 0, time.UTC), Removed: true, Images: 2, Tags: 3, Bytes: 3 << 20}); err != nil {
		t.Fatal(err)
	}
	if code, body = get(t, srv.URL+"/ui/-/registry"); code != 200 || !strings.Contains(body, "2026-12-07 23:41 UTC: removed 3 tags of 2 images, 3.0 MiB freed") {
		t.Errorf("after a prune: %d\n%s", code, body)
	}
}
