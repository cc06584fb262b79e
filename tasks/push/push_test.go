package push

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/platform"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

func TestSemverTags(t *testing.T) {
	cases := map[string][]string{
		"1.2.3":           {"1.2.3", "1.2", "1"},
		"v2.0.1":          {"2.0.1", "2.0", "2"},
		"1.2.3+git0+abcd": {"1.2.3", "1.2", "1"},
		"1.0+git":         {"1.0", "1"},
		"3":               {"3"},
		"1.2.3-rc1":       {"1.2.3-rc1"},
		"1.2.3-rc1+build": {"1.2.3-rc1"},
		"git":             nil,
		"":                nil,
		"master-1.2":      nil,
	}
	for in, want := range cases {
		if got := SemverTags(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SemverTags(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestComputeTagsGitNotes(t *testing.T) {
	broken := t.TempDir()
	writeGit(t, broken, "garbage", nil)
	cases := []struct {
		dir  string
		want []string
	}{
		{t.TempDir(), []string{"strategy sha: ", " is not in a git repository; no sha tag", "strategy branch: ", " is not in a git repository; no branch tag"}},
		{broken, []string{"strategy sha: reading the git repository of " + broken + ": ", `unexpected content "garbage"; no sha tag`}},
	}
	for _, c := range cases {
		ts, err := ComputeTags(TagInput{Strategies: []string{"sha", "branch", "latest"}, GitDir: c.dir})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ts.Tags, []string{"latest"}) || len(ts.Notes) != 2 {
			t.Fatalf("%s: tags %v notes %q", c.dir, ts.Tags, ts.Notes)
		}
		notes := strings.Join(ts.Notes, "\n")
		for _, w := range c.want {
			if !strings.Contains(notes, w) {
				t.Errorf("%s: notes %q lack %q", c.dir, ts.Notes, w)
			}
		}
	}
}

func TestArchSuffix(t *testing.T) {
	cases := []struct {
		targetArch string
		p          v1.Platform
		want       string
	}{
		{"", v1.Platform{OS: "linux", Architecture: "amd64"}, "x86_64"},
		{"", v1.Platform{OS: "linux", Architecture: "arm64"}, "aarch64"},
		{"", v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "armv7"},
		{"", v1.Platform{OS: "linux", Architecture: "riscv64"}, "riscv64"},
		// TARGET_ARCH's spelling wins for its own platform only.
		{"x86-64", v1.Platform{OS: "linux", Architecture: "amd64"}, "x86-64"},
		{"x86_64", v1.Platform{OS: "linux", Architecture: "arm64"}, "aarch64"},
		{"arm", v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "arm"},
	}
	for _, c := range cases {
		p := &pushRun{c: &config.Config{TargetArch: c.targetArch}}
		got := p.archSuffix(&c.p)
		if got != c.want {
			t.Errorf("TARGET_ARCH=%q, %s: suffix %q, want %q", c.targetArch, platform.String(c.p), got, c.want)
		}
		if err := imageref.ValidateTag("1.0-" + got); err != nil {
			t.Errorf("suffix %q does not make a tag: %v", got, err)
		}
	}
}

func writeGit(t *testing.T, dir, head string, refs map[string]string) {
	t.Helper()
	g := filepath.Join(dir, ".git")
	for ref, sha := range refs {
		p := filepath.Join(g, filepath.FromSlash(ref))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(sha+"\n"), 0o644)
	}
	os.MkdirAll(g, 0o755)
	os.WriteFile(filepath.Join(g, "HEAD"), []byte(head+"\n"), 0o644)
}

func TestComputeTags(t *testing.T) {
	dir := t.TempDir()
	writeGit(t, dir, "ref: refs/heads/feature/login_page", map[string]string{"refs/heads/feature/login_page": "8a3f2b1c0ffee0000000000000000000000000aa"})
	now := time.Date(2026, 1, 12, 14, 30, 22, 0, time.UTC)
	ts, err := ComputeTags(TagInput{Strategies: strings.Fields("timestamp sha branch semver version latest arch"), Version: "1.2.3", Now: now, GitDir: filepath.Join(dir)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"20260112-143022", "8a3f2b1", "feature-login-page", "1.2.3", "1.2", "1", "latest"}
	if !reflect.DeepEqual(ts.Tags, want) || !ts.Arch {
		t.Fatalf("tags = %v arch=%v, want %v", ts.Tags, ts.Arch, want)
	}
	// Detached HEAD: sha but no branch; packed refs are read too.
	dir2 := t.TempDir()
	writeGit(t, dir2, "0123456789abcdef0123456789abcdef01234567", nil)
	ts, err = ComputeTags(TagInput{Strategies: []string{"git", "branch"}, Now: now, GitDir: dir2})
	if err != nil || !reflect.DeepEqual(ts.Tags, []string{"0123456"}) || len(ts.Notes) != 1 {
		t.Fatalf("detached: %v %v %v", ts, ts.Notes, err)
	}
	dir3 := t.TempDir()
	writeGit(t, dir3, "ref: refs/heads/main", nil)
	os.WriteFile(filepath.Join(dir3, ".git", "packed-refs"), []byte("# pack-refs\nabcdef0123456789abcdef0123456789abcdef01 refs/heads/main\n"), 0o644)
	ts, _ = ComputeTags(TagInput{Strategies: []string{"sha", "branch"}, Now: now, GitDir: filepath.Join(dir3)})
	if !reflect.DeepEqual(ts.Tags, []string{"abcdef0", "main"}) {
		t.Fatalf("packed: %v", ts.Tags)
	}
	if _, err := ComputeTags(TagInput{Strategies: []string{"bogus"}}); err == nil || !strings.Contains(err.Error(), "unknown strategy") {
		t.Fatalf("bogus strategy: %v", err)
	}
}

func testConfig(t *testing.T, host, deployImages string) *config.Config {
	t.Helper()
	c, err := config.FromVars(config.Vars{
		"CONTAINER_REGISTRY_URL":      host,
		"CONTAINER_REGISTRY_INSECURE": "1",
		"CONTAINER_REGISTRY_STORAGE":  t.TempDir(),
		"DEPLOY_DIR_IMAGES":           deployImages,
		"TOPDIR":                      t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func indexAt(t *testing.T, ref string) (v1.Hash, map[string]v1.Hash) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r)
	if err != nil {
		t.Fatalf("get %s: %v", ref, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &im); err != nil || !d.MediaType.IsIndex() {
		t.Fatalf("%s is %s, not an index: %v", ref, d.MediaType, err)
	}
	out := map[string]v1.Hash{}
	for _, m := range im.Manifests {
		out[platform.Key(m.Platform)] = m.Digest
	}
	return d.Digest, out
}

// settles records the settle waits of a run and returns at once, so a
// test sees whether a run waited without timing it.
type settles []time.Duration

func (s *settles) wait(_ context.Context, d time.Duration) bool {
	*s = append(*s, d)
	return true
}

// Nothing here depends on the machine's speed: the timestamp tag comes
// from a fixed Now, and the settle waits are recorded, not slept.
func TestPushMergeAndRepush(t *testing.T) {
	reg := testreg.New(t)
	root := t.TempDir()
	sample.WriteTree(root, sample.DefaultBuilds())
	c := testConfig(t, reg.Host, root)
	var out events.Recorder
	var waits settles
	opts := Options{Strategy: "timestamp latest", Events: &out, Now: time.Date(2026, 1, 12, 14, 30, 22, 0, time.UTC), settle: waits.wait}
	sum, err := Push(context.Background(), target(t, c), opts)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	if sum.Images != 2 || sum.Manifests != 4 || sum.Tags != 4 || sum.Uploaded == 0 {
		t.Fatalf("summary %+v\n%s", sum, out.String())
	}
	if len(waits) != 1 || waits[0] != settleDelay {
		t.Fatalf("a push that wrote tags, not under a shared lock, waits once before checking them: waits %v", waits)
	}
	for _, tag := range []string{"latest", "20260112-143022"} {
		_, plats := indexAt(t, reg.Host+"/yocto/container-base:"+tag)
		if len(plats) != 2 || plats["linux/amd64"].String() == "" || plats["linux/arm64"].String() == "" {
			t.Fatalf("%s platforms = %v", tag, plats)
		}
	}
	if len(sum.OlderBuilds) != 1 || !strings.Contains(sum.OlderBuilds[0].Dir, "20260101080000") {
		t.Fatalf("older build handling: %+v", sum.OlderBuilds)
	}
	// An unchanged re-push uploads nothing and rewrites no tag (so it
	// has nothing to re-check after the settle delay either).
	idxBefore, _ := indexAt(t, reg.Host+"/yocto/container-base:latest")
	out.Reset()
	waits = nil
	sum, err = Push(context.Background(), target(t, c), opts)
	if err != nil || sum.Uploaded != 0 || sum.Skipped == 0 {
		t.Fatalf("re-push: %+v %v\n%s", sum, err, out.String())
	}
	unchanged := 0
	for _, e := range out.Events() {
		if tw, ok := e.(TagWritten); ok && tw.Unchanged {
			unchanged++
		}
	}
	if sum.Uploaded != 0 || unchanged != 4 {
		t.Fatalf("re-push: uploaded %d, %d unchanged tags\n%s", sum.Uploaded, unchanged, out.String())
	}
	if len(waits) != 0 {
		t.Errorf("unchanged re-push waited %v: it has nothing to check again", waits)
	}
	if idxAfter, _ := indexAt(t, reg.Host+"/yocto/container-base:latest"); idxAfter != idxBefore {
		t.Fatalf("unchanged re-push changed latest: %s -> %s", idxBefore, idxAfter)
	}

	// "Another host" rebuilds only arm64 and pushes: amd64 stays.
	_, before := indexAt(t, reg.Host+"/yocto/container-base:latest")
	other := t.TempDir()
	sample.WriteTree(other, []sample.Build{{Spec: sample.Spec{Name: "container-base", Machine: "qemuarm64", Arch: "aarch64", Stamp: "20260201000000"}, Latest: true}})
	c2 := testConfig(t, reg.Host, other)
	out.Reset()
	if _, err := Push(context.Background(), target(t, c2), Options{Strategy: "latest", Events: &out, settle: waits.wait}); err != nil {
		t.Fatalf("second host: %v\n%s", err, out.String())
	}
	_, after := indexAt(t, reg.Host+"/yocto/container-base:latest")
	if after["linux/amd64"] != before["linux/amd64"] || after["linux/arm64"] == before["linux/arm64"] || len(after) != 2 {
		t.Fatalf("merge lost or kept the wrong entries: before %v after %v", before, after)
	}
}

func TestPushNestedIndexAsIs(t *testing.T) {
	reg := testreg.New(t)
	root := t.TempDir()
	var imgs []v1.Image
	for _, a := range []string{"x86_64", "aarch64"} {
		img, err := sample.Image(sample.Spec{Name: "multi", Machine: "m", Arch: a, Stamp: "20260101000000"})
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	dir := filepath.Join(root, "genericarm", "multi-multiarch-oci")
	if err := sample.WriteNestedLayout(dir, "latest", imgs...); err != nil {
		t.Fatal(err)
	}
	src, err := deploy.LoadPath(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.Index.Digest()
	c := testConfig(t, reg.Host, root)
	var out events.Recorder
	if _, err := Push(context.Background(), target(t, c), Options{Strategy: "latest", Events: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got, plats := indexAt(t, reg.Host+"/yocto/multi:latest")
	if got != want || len(plats) != 2 {
		t.Fatalf("index %s (%v), want the layout's %s", got, plats, want)
	}
}

func TestPushInputErrors(t *testing.T) {
	reg := testreg.New(t)
	root := t.TempDir()
	sample.WriteTree(root, sample.DefaultBuilds())
	c := testConfig(t, reg.Host, root)
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Tags: []string{"v1"}}, "--tag requires an image name"},
		{Options{Target: "container-base", Tags: []string{"bad tag"}}, "invalid tag"},
		{Options{Strategy: "latest nope"}, "unknown strategy"},
		{Options{Target: "nosuch"}, "available: app-server, container-base"},
		{Options{Strategy: "semver"}, "gives no tags"},
	}
	for _, tc := range cases {
		var out events.Recorder
		tc.o.Events = &out
		_, err := Push(context.Background(), target(t, c), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.o, err, tc.want)
		}
	}
	r, _ := name.NewRegistry(reg.Host)
	repos, _ := remote.Catalog(context.Background(), r)
	if len(repos) != 0 {
		t.Fatalf("bad input changed the registry: %v", repos)
	}
}

// Two hosts push different architectures to the same tags at the same
// time, each with its own storage (so no shared lock): the read-back and
// retry keeps both.
func TestConcurrentPushesKeepBothArches(t *testing.T) {
	reg := testreg.New(t)
	trees := []string{t.TempDir(), t.TempDir()}
	sample.WriteTree(trees[0], []sample.Build{{Spec: sample.Spec{Name: "racy", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}})
	sample.WriteTree(trees[1], []sample.Build{{Spec: sample.Spec{Name: "racy", Machine: "qemuarm64", Arch: "aarch64", Stamp: "20260108123456"}, Latest: true}})
	for round := 0; round < 5; round++ {
		tag := "r" + string(rune('0'+round))
		errs := make(chan error, 2)
		for _, tree := range trees {
			go func() {
				var out events.Recorder
				_, err := Push(context.Background(), target(t, testConfig(t, reg.Host, tree)), Options{Target: "racy", Tags: []string{tag, "shared"}, Events: &out})
				errs <- err
			}()
		}
		for range trees {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for _, tg := range []string{tag, "shared"} {
			if _, plats := indexAt(t, reg.Host+"/yocto/racy:"+tg); len(plats) != 2 {
				t.Fatalf("round %d tag %s: %v", round, tg, plats)
			}
		}
	}
}

func target(t *testing.T, c *config.Config) *registry.Target {
	t.Helper()
	tg, err := registry.New(c, "container-registry.sh", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestBlobExistsRetries5xx: through the Target's client a 5xx answer is
// asked again (distribution 2.8 answers 500 to a HEAD racing an upload of
// the same blob); a 4xx or a lasting 5xx is the error.
func TestBlobExistsRetries5xx(t *testing.T) {
	for _, c := range []struct {
		name    string
		answers []int
		exists  bool
		wantErr string
		heads   int
	}{
		{"two 500s then 200", []int{500, 500, 200}, true, "", 3},
		{"503 then 404", []int{503, 404}, false, "", 2},
		{"lasting 500", []int{500, 500, 500, 500, 500}, false, "500", 4},
		{"401 at once", []int{401, 200}, false, "401", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			heads := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				w.WriteHeader(c.answers[min(heads, len(c.answers)-1)])
				heads++
			}))
			defer srv.Close()
			tg := target(t, testConfig(t, strings.TrimPrefix(srv.URL, "http://"), t.TempDir()))
			repo, err := tg.Repo("x")
			if err != nil {
				t.Fatal(err)
			}
			client, err := tg.Client(context.Background(), repo, transport.PullScope, nil)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := registry.BlobExists(context.Background(), client, repo, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)})
			if ok != c.exists || heads != c.heads || (c.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("exists %v, err %v after %d HEADs; want %v, %q after %d", ok, err, heads, c.exists, c.wantErr, c.heads)
			}
		})
	}
}
