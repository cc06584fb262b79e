package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// Promote and export (issue 21): images leave the build host's registry
// with every platform and every referrer: the build documents push
// attaches, and a cosign-style signature tag (sha256-<digest>.sig), made
// here by hand as any tool would store one.

// transferSource starts a registry holding container-base:v1 and
// app-server:v1 (two platforms each, three documents attached to every
// platform manifest) and a signature tag on container-base:v1's index. It
// returns the registry and the signature tag.
func transferSource(t *testing.T) (*Env, string) {
	t.Helper()
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "container-base", "--tag", "v1")
	e.mustRun(t, 0, "push", "app-server", "--tag", "v1")
	return e, sigTag(t, e.URL, "yocto/container-base", "v1")
}

// sigTag stores a small manifest under sha256-<hex of repo:tag>.sig, where
// cosign keeps a signature, and returns that tag.
func sigTag(t *testing.T, addr, repo, tag string) string {
	t.Helper()
	ref, err := name.ParseReference(addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	sig := subject.Digest.Algorithm + "-" + subject.Digest.Hex + ".sig"
	if err := remote.Write(ref.Context().Tag(sig), img); err != nil {
		t.Fatal(err)
	}
	return sig
}

// checkReferrers lists, with oras-go, the referrers of both platform
// manifests of repo:tag at addr (api: through the referrers API, else the
// tag schema) and wants the three documents on each.
func checkReferrers(t *testing.T, addr, repo, tag string, api bool) {
	t.Helper()
	or := orasRepo(t, addr, repo)
	for _, arch := range []string{"amd64", "arm64"} {
		subject := orasPlatform(t, or, tag, arch)
		if err := or.SetReferrersCapability(api); err != nil {
			t.Fatal(err)
		}
		docs := orasReferrers(t, or, subject)
		for _, typ := range []string{spdxType, cveType, manifestType} {
			if len(docs[typ]) == 0 {
				t.Errorf("%s/%s:%s (%s): no %s referrer at the destination", addr, repo, tag, arch, typ)
			}
		}
		or = orasRepo(t, addr, repo)
	}
}

// podmanPull pulls ref for arch from a plain-HTTP registry into a scratch
// store.
func podmanPull(t *testing.T, ref, arch string) {
	t.Helper()
	podman := testtool.Need(t, "podman")
	store, err := os.MkdirTemp("/tmp", "pm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(store) })
	cmd := exec.Command(podman, "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"pull", "--tls-verify=false", "--arch", arch, ref)
	cmd.Env = append(baseEnv(), "XDG_RUNTIME_DIR="+filepath.Join(store, "xdg"), "TMPDIR="+store)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman pull --arch %s %s: %v\n%s", arch, ref, err, out)
	}
}

// promoteJSON runs promote --json and decodes its summary.
func promoteJSON(t *testing.T, e *Env, args ...string) promoteSummary {
	t.Helper()
	r := e.mustRun(t, 0, append([]string{"promote", "--json"}, args...)...)
	var s promoteSummary
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("promote --json: %v\n%s", err, r.Stdout)
	}
	return s
}

type promoteSummary struct {
	ReferrersAPI bool  `json:"referrers_api"`
	BytesSent    int64 `json:"bytes_sent"`
	Images       []struct {
		Repo          string `json:"repository"`
		Referrers     int    `json:"referrers"`
		BlobsUploaded int    `json:"blobs_uploaded"`
		BlobsMounted  int    `json:"blobs_mounted"`
		Tags          []struct {
			Tag       string `json:"tag"`
			Unchanged bool   `json:"unchanged"`
			Attached  bool   `json:"attached"`
		} `json:"tags"`
	} `json:"images"`
}

// Into Debian's docker-registry (distribution 2.8, no referrers API): the
// referrers land in the tag schema, oras-go finds them, the signature tag
// travels, skopeo copies both architectures out, podman pulls; a second
// promote sends nothing; --tag renames.
func TestPromoteDockerRegistry(t *testing.T) {
	e, sig := transferSource(t)
	addr := dockerRegistry(t)
	r := e.mustRun(t, 0, "promote", "container-base:v1", "app-server:v1", "--to", addr+"/prod", "--dest-insecure")
	t.Logf("promote:\n%s", r.Stdout)
	wantOut(t, r, "promote", "Promoted to "+addr+"/prod", "yocto/container-base -> "+addr+"/prod/container-base",
		":"+sig, "referrers tag (sha256-<digest>): no referrers API")
	checkReferrers(t, addr, "prod/container-base", "v1", false)
	checkReferrers(t, addr, "prod/app-server", "v1", false)
	if tags := skopeo(t, "list-tags", "--tls-verify=false", "docker://"+addr+"/prod/container-base"); !strings.Contains(tags, sig) {
		t.Errorf("the signature tag %s did not travel: %s", sig, tags)
	}
	_, plats := rawIndex(t, addr+"/prod/container-base:v1")
	if plats["linux/amd64"] == "" || plats["linux/arm64"] == "" {
		t.Fatalf("promoted index platforms: %v", plats)
	}
	skopeo(t, "copy", "--all", "--src-tls-verify=false", "docker://"+addr+"/prod/container-base:v1", "oci:"+filepath.Join(t.TempDir(), "out")+":v1")
	podmanPull(t, addr+"/prod/app-server:v1", "arm64")

	r = e.mustRun(t, 0, "promote", "container-base:v1", "app-server:v1", "--to", addr+"/prod", "--dest-insecure")
	t.Logf("second promote:\n%s", r.Stdout)
	wantOut(t, r, "second promote", "Sent 0 B (0 bytes)", "(0 uploaded, 0 B; 0 mounted;")

	s := promoteJSON(t, e, "container-base:v1", "--tag", "stable", "--tag", "1.0", "--to", addr+"/prod", "--dest-insecure")
	if s.BytesSent == 0 || s.Images[0].BlobsUploaded != 0 || len(s.Images[0].Tags) != 3 {
		t.Errorf("rename: %+v", s)
	}
	_, renamed := rawIndex(t, addr+"/prod/container-base:stable")
	if renamed["linux/arm64"] != plats["linux/arm64"] {
		t.Errorf("stable is not v1: %v vs %v", renamed, plats)
	}
}

// Into a second serve (referrers API), every tag: oras-go lists the
// referrers through the API, and no referrers tag is made; the second
// run sends 0 bytes.
func TestPromoteServe(t *testing.T) {
	e, sig := transferSource(t)
	dst := NewEnv(t, nil)
	dst.mustRun(t, 0, "start")
	s := promoteJSON(t, e, "container-base", "app-server", "--all-tags", "--to", dst.URL+"/prod", "--dest-insecure")
	if !s.ReferrersAPI || len(s.Images) != 2 || s.Images[0].Referrers != 6 || s.BytesSent == 0 {
		t.Fatalf("promote to serve: %+v", s)
	}
	found := false
	for _, tg := range s.Images[0].Tags {
		found = found || (tg.Tag == sig && tg.Attached)
	}
	if !found {
		t.Errorf("signature tag not in the summary: %+v", s.Images[0].Tags)
	}
	checkReferrers(t, dst.URL, "prod/container-base", "v1", true)
	var listed struct{ Tags []string }
	out := skopeo(t, "list-tags", "--tls-verify=false", "docker://"+dst.URL+"/prod/container-base")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || !slices.Contains(listed.Tags, sig) {
		t.Errorf("tags at the destination: %v %s", err, out)
	}
	for _, tag := range listed.Tags {
		if referrersTagRe.MatchString(tag) {
			t.Errorf("a destination with the referrers API got a referrers tag %s", tag)
		}
	}
	s = promoteJSON(t, e, "container-base", "app-server", "--all-tags", "--to", dst.URL+"/prod", "--dest-insecure")
	if s.BytesSent != 0 {
		t.Errorf("second promote sent %d bytes", s.BytesSent)
	}
	for _, img := range s.Images {
		for _, tg := range img.Tags {
			if !tg.Unchanged {
				t.Errorf("second promote changed %s:%s", img.Repo, tg.Tag)
			}
		}
	}
}

// A destination with TLS and authentication: its CA file and the
// password on standard input; a wrong password, a missing CA and a
// destination that is down fail clearly.
func TestPromoteSecureDestination(t *testing.T) {
	e, _ := transferSource(t)
	dst := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})
	dst.mustRun(t, 0, "start")
	pw, err := os.ReadFile(filepath.Join(dst.Storage, "auth", "password"))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dst.Storage, "pki", "ca.crt")
	args := []string{"promote", "container-base:v1", "--to", dst.URL + "/prod", "--ca-file", ca, "--creds", "yocto", "--password-stdin"}
	r := e.runWithStdin(t, string(pw), args...)
	if r.Code != 0 {
		t.Fatalf("promote to TLS + auth: %s", r.Out())
	}
	wantOut(t, r, "secure promote", "Promoted to "+dst.URL+"/prod", "referrers API")
	r = e.runWithStdin(t, "wrong\n", args...)
	t.Logf("wrong password:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "rejected the credentials") {
		t.Errorf("wrong password: exit %d\n%s", r.Code, r.Out())
	}
	r = e.runWithStdin(t, string(pw), "promote", "container-base:v1", "--to", dst.URL+"/prod", "--creds", "yocto", "--password-stdin")
	t.Logf("no CA:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "certificate") {
		t.Errorf("without the CA: exit %d\n%s", r.Code, r.Out())
	}
	down := "127.0.0.1:" + FreePort(t)
	r = e.Run("promote", "container-base:v1", "--to", down)
	t.Logf("down:\n%s", r.Stdout)
	if r.Code != 1 || !strings.Contains(r.Stdout, "Registry not responding at https://"+down) || strings.Contains(r.Stdout, "start") {
		t.Errorf("destination down: exit %d\n%s", r.Code, r.Out())
	}
	r = e.Run("promote", "nope:v1", "--to", dst.URL, "--ca-file", ca)
	if r.Code == 0 {
		t.Errorf("unknown image promoted: %s", r.Out())
	}
	r = e.Run("promote", "container-base:v1", "--to", "https://"+dst.URL)
	if r.Code != 2 || !strings.Contains(r.Stdout, "without a scheme") {
		t.Errorf("--to with a scheme: exit %d\n%s", r.Code, r.Out())
	}
}

// runWithStdin runs the helper with input on its standard input.
func (e *Env) runWithStdin(t *testing.T, input string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(e.Script, args...)
	cmd.Env = baseEnv()
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}
