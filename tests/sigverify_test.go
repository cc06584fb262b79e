package tests

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// sigverifyDir is the test-only verifier's module (tests/sigverify).
const sigverifyDir = "sigverify"

// sigverifyTags are the build tags that compile upstream containers/image
// without C libraries (gpgme, btrfs, devicemapper).
const sigverifyTags = "containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper"

// sigverifyBin builds tests/sigverify once per content of its module (go.mod,
// go.sum, the sources) into the tests' tool cache (tests/cachedir.sh),
// outside the checkout: the first build downloads containers/image and its
// dependencies from the Go module proxy and takes a minute on two cores.
func sigverifyBin(t *testing.T) string {
	t.Helper()
	h := sha256.New()
	files, err := filepath.Glob(filepath.Join(sigverifyDir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("tests/%s: %v", sigverifyDir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(data))
		h.Write(data)
	}
	fmt.Fprintf(h, "tags %s\n", sigverifyTags)
	bin := filepath.Join(testCacheDir(t), "sigverify-"+hex.EncodeToString(h.Sum(nil))[:16], "sigverify")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".tmp"
	build := exec.Command("go", "build", "-trimpath", "-tags", sigverifyTags, "-o", tmp, ".")
	build.Dir = sigverifyDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tests/%s (go.podman.io/image/v5 from the Go module proxy): %v\n%s", sigverifyDir, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// testCacheDir is the per-machine cache of the programs tests build,
// outside the checkout (tests/cachedir.sh names it).
func testCacheDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("sh", "cachedir.sh").Output()
	if err != nil {
		t.Fatalf("tests/cachedir.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// verdict is sigverify's answer on one manifest.
type verdict struct {
	Ref     string
	Digest  string
	Index   bool
	Allowed bool
	Error   string
}

// sigverify runs the verifier on refs against the target root rootfs and
// returns its verdicts and exit status (0 all allowed, 1 one refused).
func sigverify(t *testing.T, bin, rootfs string, refs ...string) ([]verdict, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--root", rootfs}, refs...)...)
	cmd.Env = baseEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code != 1 {
		t.Fatalf("sigverify %v: %v\n%s%s", refs, err, out, stderr.String())
	}
	var vs []verdict
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var v verdict
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("sigverify output: %v\n%s", err, out)
		}
		vs = append(vs, v)
	}
	for _, v := range vs {
		t.Logf("policy check: %s %s (%s) %s", map[bool]string{true: "ALLOWED", false: "REFUSED"}[v.Allowed], v.Ref, v.Digest[:19], v.Error)
	}
	return vs, code
}

// A target whose files are the ones `target oci` writes with signing on
// (the public key, the registries.d entry, policy.json merged into the
// policy meta-virtualization's container-host-config ships; in secure mode
// also the CA and auth.json) pulls, as upstream containers/image decides it
// for the index and every instance: what push signed, and nothing else.
func TestTargetVerifiesSignatures(t *testing.T) {
	testtool.Need(t, "skopeo")
	bin := sigverifyBin(t)
	for _, mode := range []string{"insecure", "secure"} {
		t.Run(mode, func(t *testing.T) { testTargetVerifies(t, bin, mode == "secure") })
	}
}

func testTargetVerifies(t *testing.T, bin string, secure bool) {
	deploy := filepath.Join(t.TempDir(), "images")
	layouts, err := sample.WriteTree(deploy, sample.DefaultBuilds())
	if err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	// The target reaches the host at 127.0.0.1 here (a QEMU target would
	// use 10.0.2.2): the address the policy's scope and the signed
	// identities name.
	target := "127.0.0.1:" + port
	vars := map[string]string{
		"CONTAINER_REGISTRY_URL":        "localhost:" + port,
		"CONTAINER_REGISTRY_TARGET_URL": target,
		"CONTAINER_REGISTRY_SIGN":       "1",
		"DEPLOY_DIR_IMAGES":             deploy,
	}
	if secure {
		vars["CONTAINER_REGISTRY_SECURE"] = "1"
	}
	e := NewEnv(t, vars)
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push")

	// The target: container-host-config's policy.json (the test layer's
	// stand-in, with a scope of its own), then the oci payload over it.
	rootfs := t.TempDir()
	hostPolicy, err := os.ReadFile("testdata/meta-virtualization-stub/recipes-containers/container-host-config/files/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(rootfs, "etc", "containers"), "policy.json", string(hostPolicy), 0o644)
	dumpVars := map[string]string{
		"CONTAINER_REGISTRY_URL":        e.URL,
		"CONTAINER_REGISTRY_STORAGE":    e.Storage,
		"CONTAINER_REGISTRY_TARGET_URL": target,
		"CONTAINER_REGISTRY_SIGN":       "1",
		"CONTAINER_REGISTRY_INSECURE":   "1",
	}
	kinds := []string{"oci"}
	if secure {
		pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
		if err != nil {
			t.Fatal(err)
		}
		creds := "yocto:" + strings.TrimSpace(string(pw))
		auth := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, target, base64.StdEncoding.EncodeToString([]byte(creds)))
		dumpVars["CONTAINER_REGISTRY_SECURE"], dumpVars["CONTAINER_REGISTRY_INSECURE"] = "1", "0"
		dumpVars["CONTAINER_REGISTRY_AUTHFILE"] = writeFile(t, t.TempDir(), "auth.json", auth, 0o600)
		kinds = append(kinds, "ca")
	}
	dump := writeFile(t, t.TempDir(), "env.dump", DumpText(dumpVars), 0o644)
	for _, kind := range kinds {
		if r := RunTool(t, nil, "target", kind, "--env-dump", dump, "--dest", rootfs); r.Code != 0 {
			t.Fatalf("target %s: %s", kind, r.Out())
		}
	}
	// Docker has no sigstore verification: its payload says so.
	if r := RunTool(t, nil, "target", "docker", "--env-dump", dump, "--dest", t.TempDir()); r.Code != 0 || !strings.Contains(r.Stdout, "Docker does not verify sigstore signatures") {
		t.Errorf("target docker with signing on: exit %d, no note that Docker does not verify:\n%s", r.Code, r.Out())
	}
	// skopeo, the plain client, with the target's CA and credentials.
	copyImage := func(src, dst string) {
		t.Helper()
		args := []string{"copy", "--all", "--dest-tls-verify=false"}
		if secure {
			certs := filepath.Join(rootfs, "etc/containers/certs.d", target)
			auth := filepath.Join(rootfs, "etc/containers/auth.json")
			args = []string{"copy", "--all", "--dest-cert-dir", certs, "--dest-authfile", auth, "--src-cert-dir", certs, "--src-authfile", auth}
		} else if strings.HasPrefix(src, "docker://") {
			args = append(args, "--src-tls-verify=false")
		}
		skopeo(t, append(args, src, dst)...)
	}
	policy, _ := os.ReadFile(filepath.Join(rootfs, "etc/containers/policy.json"))
	t.Logf("the target's policy.json:\n%s", policy)
	if !strings.Contains(string(policy), `"registry.example.com/vendor"`) {
		t.Errorf("the merge dropped container-host-config's own scope:\n%s", policy)
	}

	ref := func(repo string) string { return "docker://" + target + "/" + repo }
	expect := func(what string, wantAllowed bool, wantN int, refs ...string) []verdict {
		t.Helper()
		vs, code := sigverify(t, bin, rootfs, refs...)
		if len(vs) != wantN {
			t.Errorf("%s: %d verdicts, want %d", what, len(vs), wantN)
		}
		for _, v := range vs {
			if v.Allowed != wantAllowed {
				t.Errorf("%s: %s@%s allowed %v, want %v (%s)", what, v.Ref, v.Digest, v.Allowed, wantAllowed, v.Error)
			}
		}
		if (code == 0) != wantAllowed {
			t.Errorf("%s: sigverify exit %d", what, code)
		}
		return vs
	}

	// Pushed with signing on: the index and both platform manifests.
	signed := expect("signed push", true, 6, ref("yocto/container-base:latest"), ref("yocto/app-server:latest"))
	if !signed[0].Index || signed[1].Index {
		t.Errorf("the first verdict is not the index's: %+v", signed[:2])
	}
	// A platform manifest pulled by digest verifies alone.
	expect("platform digest", true, 1, ref("yocto/container-base@"+signed[1].Digest))

	// Pushed without signing, by a plain client: refused. A layout copied
	// with skopeo, and a signed image copied to another repository
	// (signatures are bound to the repository they were made for).
	copyImage("oci:"+layouts[2], ref("yocto/unsigned:1"))
	expect("unsigned (skopeo copy)", false, 1, ref("yocto/unsigned:1"))
	copyImage(ref("yocto/app-server:latest"), ref("yocto/copied:latest"))
	expect("signed elsewhere, copied", false, 3, ref("yocto/copied:latest"))

	// Signed by another key (the generated key of another storage): refused.
	other := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SIGN": "1"})
	r := e.RunEnv(map[string]string{
		"CONTAINER_REGISTRY_SIGNING_KEY":           filepath.Join(other.Storage, "pki", "signing.key"),
		"CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": filepath.Join(other.Storage, "pki", "signing.pass"),
		"CONTAINER_REGISTRY_NAMESPACE":             "otherkey",
	}, "push", "app-server")
	if r.Code != 0 {
		t.Fatalf("push signed by another key: %s", r.Out())
	}
	if tags := listSigTags(t, e, "otherkey/app-server"); tags != 3 {
		t.Errorf("otherkey/app-server holds %d signature tags, want 3 (index and two platforms)", tags)
	}
	expect("signed by another key", false, 3, ref("otherkey/app-server:latest"))

	// A tag re-pointed after signing to another manifest: refused, also
	// when the old manifest's signature is copied to the new digest's
	// signature tag (it names the old digest).
	opts := e.remoteOpts(t)
	copyImage(ref("yocto/app-server:latest"), ref("yocto/container-base:latest"))
	repointed := expect("re-pointed tag", false, 3, ref("yocto/container-base:latest"))
	oldSig := sigRef(t, e, "yocto/container-base", signed[0].Digest)
	newSig := sigRef(t, e, "yocto/container-base", repointed[0].Digest)
	desc, err := remote.Get(oldSig, opts...)
	if err != nil {
		t.Fatalf("reading %s: %v", oldSig, err)
	}
	if err := remote.Put(newSig, desc, opts...); err != nil {
		t.Fatalf("writing %s: %v", newSig, err)
	}
	vs := expect("re-pointed tag with the old signature copied", false, 3, ref("yocto/container-base:latest"))
	if len(vs) > 0 && !strings.Contains(vs[0].Error, signed[0].Digest) {
		t.Errorf("the copied signature was refused, but not for naming the old digest %s: %s", signed[0].Digest, vs[0].Error)
	}
	// The other signed image is still allowed: the refusals are the
	// images', not the registry's.
	expect("signed push, still", true, 3, ref("yocto/app-server:latest"))

	// Each generated file counts: without the registries.d entry
	// containers/image does not look for the signatures (refused); in
	// secure mode, without auth.json or the CA the registry is not
	// reachable at all (containers/image reads CAs from /etc/docker/certs.d
	// too, where `target ca` also puts it).
	partial := func(drop ...string) string {
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-a", rootfs+"/.", dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		for _, d := range drop {
			os.RemoveAll(filepath.Join(dir, d))
		}
		return dir
	}
	if vs, code := sigverify(t, bin, partial("etc/containers/registries.d"), ref("yocto/app-server:latest")); code != 1 || len(vs) != 3 || vs[0].Allowed {
		t.Errorf("without registries.d: exit %d, verdicts %+v; want every manifest refused", code, vs)
	}
	if secure {
		for _, drop := range [][]string{{"etc/containers/auth.json"}, {"etc/containers/certs.d", "etc/docker/certs.d"}} {
			cmd := exec.Command(bin, "--root", partial(drop...), ref("yocto/app-server:latest"))
			cmd.Env = baseEnv()
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("without %v: sigverify exit %d, want 2 (registry not reachable)\n%s", drop, code, out)
			} else {
				t.Logf("without %v: %s", drop, strings.TrimSpace(string(out)))
			}
		}
	}
}

// sigRef is the cosign signature tag of digest in repo of e's registry.
func sigRef(t *testing.T, e *Env, repo, digest string) name.Reference {
	t.Helper()
	d, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.NewTag(e.URL+"/"+repo+":"+sign.SigTag(d), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// listSigTags counts the cosign signature tags (sha256-<hex>.sig) of repo.
func listSigTags(t *testing.T, e *Env, repo string) int {
	t.Helper()
	r, err := name.NewRepository(e.URL+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, e.remoteOpts(t)...)
	if err != nil {
		t.Fatalf("tags of %s: %v", repo, err)
	}
	n := 0
	for _, tag := range tags {
		if _, ok := sign.IsSigTag(tag); ok {
			n++
		}
	}
	return n
}
