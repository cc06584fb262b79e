package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// deployTree writes a deploy tree: qemux86-64 (container-base with an
// older build, app-server, a nested multi-arch image) and qemuarm64
// (container-base, app-server). It returns DEPLOY_DIR_IMAGES.
func deployTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "deploy", "images")
	if _, err := sample.WriteTree(root, sample.DefaultBuilds()); err != nil {
		t.Fatal(err)
	}
	var imgs []v1.Image
	for _, s := range []sample.Spec{
		{Name: "multi", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260105000000"},
		{Name: "multi", Machine: "qemux86-64", Arch: "arm", Variant: "v7", Stamp: "20260105000000"},
	} {
		img, err := sample.Image(s)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	if err := sample.WriteNestedLayout(filepath.Join(root, "qemux86-64", "multi-multiarch-oci"), "latest", imgs...); err != nil {
		t.Fatal(err)
	}
	return root
}

// layoutManifest is the digest of the single image of a deploy layout.
func layoutManifest(t *testing.T, dir string) string {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("%s: %v", dir, err)
	}
	return im.Manifests[0].Digest.String()
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(testtool.Need(t, "skopeo"), args...)
	cmd.Env = baseEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// rawIndex reads a tag with skopeo inspect --raw: platform -> digest.
func rawIndex(t *testing.T, ref string) (string, map[string]string) {
	t.Helper()
	raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
	var im v1.IndexManifest
	if err := json.Unmarshal([]byte(raw), &im); err != nil {
		t.Fatalf("%s: %v\n%s", ref, err, raw)
	}
	if im.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("%s is %s, want an OCI image index:\n%s", ref, im.MediaType, raw)
	}
	out := map[string]string{}
	for _, m := range im.Manifests {
		k := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			k += "/" + m.Platform.Variant
		}
		out[k] = m.Digest.String()
	}
	return raw, out
}

// listTags lists the tags of image with skopeo, leaving out the referrers
// tags (sha256-<hex>) that list the build documents push attaches while
// the registry has no referrers API (attach_test.go checks those).
func listTags(t *testing.T, e *Env, image string) []string {
	t.Helper()
	return listRepoTags(t, e.URL+"/yocto/"+image)
}

// listRepoTags is listTags of a repository reference host:port/name.
func listRepoTags(t *testing.T, repo string) []string {
	t.Helper()
	var r struct{ Tags []string }
	if err := json.Unmarshal([]byte(skopeo(t, "list-tags", "--tls-verify=false", "docker://"+repo)), &r); err != nil {
		t.Fatal(err)
	}
	tags := []string{}
	for _, tag := range r.Tags {
		if !referrersTagRe.MatchString(tag) {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	return tags
}

// referrersTagRe matches the distribution-spec's referrers tag schema.
var referrersTagRe = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

var uploadedRe = regexp.MustCompile(`uploaded (\d+) bytes`)

func uploaded(t *testing.T, r Result) string {
	t.Helper()
	m := uploadedRe.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no byte count in:\n%s", r.Stdout)
	}
	return m[1]
}

// The main job: two machines, several images, an older build and a nested
// multi-arch layout; one index per tag with both architectures, checked
// with skopeo; an unchanged re-push uploads nothing.
func TestPushTwoMachines(t *testing.T) {
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	r := e.mustRun(t, 0, "push", "--strategy", "timestamp latest")
	t.Logf("push transcript:\n%s", r.Stdout)
	wantOut(t, r, "push",
		"Pushing: container-base (amd64) [from qemux86-64]",
		"Pushing: container-base (arm64) [from qemuarm64]",
		"Pushing: app-server (arm64) [from qemuarm64]",
		"-> "+e.URL+"/yocto/container-base:latest",
		"container-base-qemux86-64.rootfs-20260101080000-oci (older build",
		"Catalog:", "yocto/multi")
	if r.Stderr != "" {
		t.Errorf("stderr through the script: %s", r.Stderr)
	}
	x86 := filepath.Join(root, "qemux86-64", "container-base-qemux86-64.rootfs-20260108123456-oci")
	arm := filepath.Join(root, "qemuarm64", "container-base-qemuarm64.rootfs-20260108130000-oci")
	old := filepath.Join(root, "qemux86-64", "container-base-qemux86-64.rootfs-20260101080000-oci")
	raw, plats := rawIndex(t, e.URL+"/yocto/container-base:latest")
	t.Logf("skopeo inspect --raw container-base:latest:\n%s", raw)
	if plats["linux/amd64"] != layoutManifest(t, x86) || plats["linux/arm64"] != layoutManifest(t, arm) || len(plats) != 2 {
		t.Fatalf("index platforms %v", plats)
	}
	tags := listTags(t, e, "container-base")
	if len(tags) != 2 || tags[1] != "latest" || !regexp.MustCompile(`^\d{8}-\d{6}$`).MatchString(tags[0]) {
		t.Fatalf("tags %v", tags)
	}
	_, ts := rawIndex(t, e.URL+"/yocto/container-base:"+tags[0])
	if ts["linux/amd64"] != plats["linux/amd64"] {
		t.Fatalf("timestamp tag differs from latest: %v", ts)
	}
	// The older build is never pushed.
	cmd := exec.Command(testtool.Need(t, "skopeo"), "inspect", "--raw", "--tls-verify=false", "docker://"+e.URL+"/yocto/container-base@"+layoutManifest(t, old))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("older build is in the registry:\n%s", out)
	}
	// skopeo copy of each architecture gives the deploy manifest back.
	for arch, dir := range map[string]string{"amd64": x86, "arm64": arm} {
		dest := filepath.Join(t.TempDir(), "copy")
		skopeo(t, "copy", "--override-arch", arch, "--src-tls-verify=false", "docker://"+e.URL+"/yocto/container-base:latest", "oci:"+dest+":x")
		if got, want := layoutManifest(t, dest), layoutManifest(t, dir); got != want {
			t.Errorf("%s: copied manifest %s, deploy layout has %s", arch, got, want)
		}
	}
	// The nested multi-arch layout is pushed as the index it is.
	p, _ := layout.FromPath(filepath.Join(root, "qemux86-64", "multi-multiarch-oci"))
	ii, _ := p.ImageIndex()
	im, _ := ii.IndexManifest()
	mraw, mplats := rawIndex(t, e.URL+"/yocto/multi:latest")
	if d, _, _ := v1.SHA256(strings.NewReader(mraw)); d != im.Manifests[0].Digest || mplats["linux/arm/v7"] == "" || mplats["linux/amd64"] == "" {
		t.Fatalf("multi index %s %v, want the layout's %s", d, mplats, im.Manifests[0].Digest)
	}

	// Unchanged re-push: zero bytes.
	r = e.mustRun(t, 0, "push", "--strategy", "latest")
	if n := uploaded(t, r); n != "0" {
		t.Fatalf("re-push uploaded %s bytes:\n%s", n, r.Stdout)
	}
	t.Logf("re-push: %s", regexp.MustCompile(`Summary:.*`).FindString(r.Stdout))
}

// A second build host pushes a new arm64 build: amd64 stays in the index.
func TestPushSecondHostAddsArch(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "container-base", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}})
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	_, before := rawIndex(t, e.URL+"/yocto/container-base:latest")
	if len(before) != 1 {
		t.Fatalf("first push: %v", before)
	}
	other := filepath.Join(t.TempDir(), "images")
	sample.WriteTree(other, []sample.Build{{Spec: sample.Spec{Name: "container-base", Machine: "qemuarm64", Arch: "aarch64", Stamp: "20260109000000"}, Latest: true}})
	r := e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": other}, "push", "--strategy", "latest")
	if r.Code != 0 {
		t.Fatalf("second host push: %s", r.Out())
	}
	_, after := rawIndex(t, e.URL+"/yocto/container-base:latest")
	if len(after) != 2 || after["linux/amd64"] != before["linux/amd64"] || after["linux/arm64"] == "" {
		t.Fatalf("after second host: %v (before %v)", after, before)
	}
}

func gitRepo(t *testing.T, branch string) string {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(baseEnv(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", branch)
	run("commit", "-q", "--allow-empty", "-m", "x")
	return dir
}

// Tag sets per strategy, through the script.
func TestPushStrategies(t *testing.T) {
	top := gitRepo(t, "feature/login_page")
	sha := func() string {
		out, _ := exec.Command("git", "-C", top, "rev-parse", "--short=7", "HEAD").Output()
		return strings.TrimSpace(string(out))
	}()
	root := filepath.Join(t.TempDir(), "images")
	sample.WriteTree(root, []sample.Build{
		{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true},
		{Spec: sample.Spec{Name: "app", Machine: "qemuarm64", Arch: "aarch64", Stamp: "20260108123456"}, Latest: true},
	})
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "TOPDIR": top, "TARGET_ARCH": "x86_64"})
	e.mustRun(t, 0, "start")
	cases := []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{nil, []string{"--strategy", "sha branch latest"}, []string{sha, "feature-login-page", "latest"}},
		{nil, []string{"--strategy", "git"}, []string{sha}},
		{nil, []string{"-s", "semver", "--version", "1.2.3"}, []string{"1", "1.2", "1.2.3"}},
		{map[string]string{"IMAGE_VERSION": "2.0.0-rc1"}, []string{"--strategy", "semver"}, []string{"2.0.0-rc1"}},
		{nil, []string{"--strategy", "semver version", "-v", "3.1+gitAUTOINC+abc"}, []string{"3", "3.1", "3.1-gitAUTOINC-abc"}},
		{map[string]string{"CONTAINER_REGISTRY_TAG_STRATEGY": "version arch"}, []string{"--version", "4.0"}, []string{"4.0", "4.0-aarch64", "4.0-x86_64"}},
		{nil, []string{"app", "--tag", "v1.0.0", "--tag", "stable"}, []string{"stable", "v1.0.0"}},
	}
	for i, c := range cases {
		e2 := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "TOPDIR": top, "TARGET_ARCH": "x86_64", "CONTAINER_REGISTRY_URL": e.URL,
			"CONTAINER_REGISTRY_NAMESPACE": "s" + string(rune('a'+i))})
		r := e2.RunEnv(c.env, append([]string{"push"}, c.args...)...)
		if r.Code != 0 {
			t.Fatalf("%v: %s", c.args, r.Out())
		}
		got := listRepoTags(t, e.URL+"/s"+string(rune('a'+i))+"/app")
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v %v: tags %v, want %v", c.env, c.args, got, c.want)
		}
	}
	// Arch tags hold only their platform.
	_, p := rawIndex(t, e.URL+"/sf/app:4.0-aarch64")
	if len(p) != 1 || p["linux/arm64"] == "" {
		t.Fatalf("4.0-aarch64: %v", p)
	}
}

// Path mode and every invalid-input case.
func TestPushPathAndErrors(t *testing.T) {
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	// Registry down.
	r := e.mustRun(t, 1, "push")
	wantOut(t, r, "down", "Registry not responding at http://"+e.URL, "start")
	e.mustRun(t, 0, "start")
	path := filepath.Join(root, "qemuarm64", "app-server-latest-oci")
	r = e.mustRun(t, 0, "push", path, "--tag", "pathtag")
	wantOut(t, r, "path", "Pushing: app-server (arm64) [from qemuarm64]", "-> "+e.URL+"/yocto/app-server:pathtag")
	if got := listTags(t, e, "app-server"); strings.Join(got, " ") != "pathtag" {
		t.Fatalf("path mode pushed tags %v", got)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"push", "--tag", "v1"}, nil, "--tag requires an image name"},
		{[]string{"push", "--strategy", "latest bogus"}, nil, `unknown strategy "bogus"`},
		{[]string{"push"}, map[string]string{"CONTAINER_REGISTRY_TAG_STRATEGY": "nope"}, `unknown strategy "nope"`},
		{[]string{"push", "nosuch"}, nil, `no image named "nosuch"`},
		{[]string{"push", "app-server", "--tag", "bad:tag"}, nil, "invalid tag"},
		{[]string{"push", "--strategy", "semver"}, nil, "gives no tags"},
		{[]string{"push", "/nonexistent/x-oci"}, nil, "not an OCI image layout"},
		{[]string{"push", "--creds", "nocolon"}, nil, "--creds: want USER:PASSWORD"},
		{[]string{"push", "--authfile", "/nonexistent.json"}, nil, "auth file /nonexistent.json: not found"},
		{[]string{"push", "--credsfile", "/nonexistent"}, nil, "credentials file /nonexistent: not found"},
		{[]string{"push", "--authfile", "a", "--credsfile", "b"}, nil, "conflicting auth options"},
		{[]string{"push", "--auth-mode", "bogus"}, nil, `unknown auth mode "bogus"`},
		{[]string{"push"}, map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "env"}, "needs CONTAINER_REGISTRY_TOKEN or both CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD"},
		{[]string{"push", "--use-home-auth"}, map[string]string{"HOME": t.TempDir()}, ".docker/config.json not found"},
	} {
		r := e.RunEnv(c.env, c.args...)
		if r.Code == 0 || !strings.Contains(r.Stdout, c.want) {
			t.Errorf("%v: exit %d, want non-zero with %q:\n%s", c.args, r.Code, c.want, r.Out())
		}
	}
	if got := listTags(t, e, "app-server"); strings.Join(got, " ") != "pathtag" {
		t.Fatalf("bad input changed the registry: %v", got)
	}
	// Nothing to push: success.
	empty := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": t.TempDir(), "CONTAINER_REGISTRY_URL": e.URL})
	r = empty.mustRun(t, 0, "push")
	wantOut(t, r, "empty", "Nothing to push")
}

// populate: the bitbake-driven push from an env dump.
func TestPopulate(t *testing.T) {
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	vars := map[string]string{
		"CONTAINER_REGISTRY_URL": e.URL, "CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_STORAGE": e.Storage,
		"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_IMAGES": "app-server", "CONTAINER_REGISTRY_TAG_STRATEGY": "version latest", "PV": "1.4",
	}
	dump := filepath.Join(t.TempDir(), "dump")
	os.WriteFile(dump, []byte(DumpText(vars)), 0o644)
	r := RunTool(t, nil, "populate", "--env-dump", dump)
	if r.Code != 0 {
		t.Fatalf("populate: %s", r.Out())
	}
	if got := listTags(t, e, "app-server"); strings.Join(got, " ") != "1.4 latest" {
		t.Fatalf("populate tags %v", got)
	}
	vars["CONTAINER_REGISTRY_IMAGES"] = "nosuch"
	os.WriteFile(dump, []byte(DumpText(vars)), 0o644)
	if r := RunTool(t, nil, "populate", "--env-dump", dump); r.Code == 0 || !strings.Contains(r.Out(), `no image named "nosuch"`) {
		t.Fatalf("populate with unknown image: %d %s", r.Code, r.Out())
	}
}

// Secure mode: push and import use the generated credentials and CA
// without any option.
func TestPushSecureMode(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}})
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SECURE": "1"})
	e.mustRun(t, 0, "start")
	r := e.mustRun(t, 0, "push")
	wantOut(t, r, "secure push", "Using credentials from the local registry (user yocto", "-> "+e.URL+"/yocto/app:latest")
	pw, _ := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
	if strings.Contains(r.Out(), strings.TrimSpace(string(pw))) {
		t.Fatal("push printed the registry password")
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "qemux86-64", "app-*-2026*-oci"))
	e.mustRun(t, 0, "import", "oci:"+dirs[0], "copy")
	// Wrong password from the environment: a clear error.
	r = e.RunEnv(map[string]string{"CONTAINER_REGISTRY_PASSWORD": "wrong"}, "push")
	if r.Code == 0 || !strings.Contains(r.Stdout, "rejected the credentials") {
		t.Fatalf("wrong password: %d\n%s", r.Code, r.Out())
	}
}
