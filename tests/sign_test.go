package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// Signed images, checked with sigstore's own cosign (tests/cosign.sh
// builds it from the module proxy) and the tool's verify.

// cosign runs cosign with args in dir and the environment env; it
// returns the combined output and whether cosign succeeded. cosign's TUF
// cache goes to a scratch directory: key-based verification without a
// transparency log needs none.
func cosign(t *testing.T, dir string, env map[string]string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(testtool.Cosign(t), args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), "TUF_ROOT="+filepath.Join(t.TempDir(), "tuf"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// cosignVerify checks ref's signature by the public key file pub, as a
// build host without a transparency log does.
func cosignVerify(t *testing.T, pub, ref string) (string, bool) {
	t.Helper()
	return cosign(t, "", nil, "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", ref)
}

// mustVerify fails the test unless cosign accepts ref's signature by pub
// and the payload names digest (when not empty).
func mustVerify(t *testing.T, pub, ref, digest string) {
	t.Helper()
	out, ok := cosignVerify(t, pub, ref)
	if !ok || !strings.Contains(out, "The signatures were verified against the specified public key") || !strings.Contains(out, digest) {
		t.Fatalf("cosign verify %s (want %s):\n%s", ref, digest, out)
	}
}

// sigDigest is the digest of the manifest under ref's signature tag ("" none).
func sigDigest(t *testing.T, repo, manifest string) string {
	t.Helper()
	ref, err := name.ParseReference(repo+":"+strings.Replace(manifest, ":", "-", 1)+".sig", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

var (
	signedRe   = regexp.MustCompile(`Signed: (\d+) manifest\(s\) with key (sha256:[0-9a-f]{64}), (\d+) already signed`)
	attestedRe = regexp.MustCompile(`Attested: (\d+) SPDX document\(s\) as signed in-toto statements, (\d+) already attested`)
)

// Push with signing on: the generated key is cosign's format and 0600; the
// tag's index and every platform manifest verify with cosign, each
// platform's SPDX SBOM is a signed attestation cosign verify-attestation
// accepts; a re-push signs, attests and uploads nothing; a tampered signature is refused by cosign and
// reported by verify.
func TestSignPush(t *testing.T) {
	testtool.Need(t, "skopeo")
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SIGN": "1"})
	pki := filepath.Join(e.Storage, "pki")
	for f, mode := range map[string]os.FileMode{"signing.key": 0o600, "signing.pass": 0o600, "signing.pub": 0o644} {
		st, err := os.Stat(filepath.Join(pki, f))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v, want %04o", f, err, st.Mode().Perm(), mode)
		}
	}
	key, _ := os.ReadFile(filepath.Join(pki, "signing.key"))
	if !bytes.HasPrefix(key, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) {
		t.Fatalf("signing.key is not a cosign key:\n%s", key)
	}
	script, _ := os.ReadFile(e.Script)
	pass, _ := os.ReadFile(filepath.Join(pki, "signing.pass"))
	if bytes.Contains(script, bytes.TrimSpace(pass)) {
		t.Fatal("the key's passphrase is baked into the script")
	}
	pub := filepath.Join(pki, "signing.pub")
	// cosign itself reads the generated private key with its passphrase.
	derived, ok := cosign(t, "", map[string]string{"COSIGN_PASSWORD": string(bytes.TrimSpace(pass))}, "public-key", "--key", filepath.Join(pki, "signing.key"))
	want, _ := os.ReadFile(pub)
	if !ok || strings.TrimSpace(derived) != strings.TrimSpace(string(want)) {
		t.Fatalf("cosign public-key of signing.key:\n%s\nwant:\n%s", derived, want)
	}
	r := e.mustRun(t, 0, "info")
	wantOut(t, r, "info", "Signing key:  "+filepath.Join(pki, "signing.key"), "Public key:   "+pub+" (sha256:")

	e.mustRun(t, 0, "start")
	r = e.mustRun(t, 0, "push", "--strategy", "latest")
	m := signedRe.FindStringSubmatch(r.Stdout)
	// container-base and app-server: 2 platforms and an index each; multi:
	// its nested index and 2 platforms.
	if m == nil || m[1] != "9" || m[3] != "0" {
		t.Fatalf("first push signed:\n%s", r.Stdout)
	}
	for _, image := range []string{"container-base", "app-server", "multi"} {
		ref := e.URL + "/yocto/" + image
		raw, plats := rawIndex(t, ref+":latest")
		index, _, _ := v1.SHA256(strings.NewReader(raw))
		mustVerify(t, pub, ref+":latest", index.String())
		for _, d := range plats {
			mustVerify(t, pub, ref+"@"+d, d)
		}
	}

	// The SPDX SBOM of each platform (container-base and app-server have
	// one) is attested: cosign verify-attestation accepts it.
	if m := attestedRe.FindStringSubmatch(r.Stdout); m == nil || m[1] != "4" || m[2] != "0" {
		t.Fatalf("first push attested:\n%s", r.Stdout)
	}
	base := e.URL + "/yocto/container-base"
	raw, plats := rawIndex(t, base+":latest")
	for _, d := range plats {
		out, ok := cosign(t, "", nil, "verify-attestation", "--type", "spdxjson", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", base+"@"+d)
		if !ok || !strings.Contains(out, `"payloadType":"application/vnd.in-toto+json"`) {
			t.Fatalf("cosign verify-attestation %s:\n%s", d, out)
		}
	}

	// Re-push: nothing signed or attested, nothing uploaded, signature
	// tags unchanged.
	index, _, _ := v1.SHA256(strings.NewReader(raw))
	before := sigDigest(t, base, index.String())
	r = e.mustRun(t, 0, "push", "--strategy", "latest")
	if m := signedRe.FindStringSubmatch(r.Stdout); m == nil || m[1] != "0" || m[3] != "9" || uploaded(t, r) != "0" {
		t.Fatalf("re-push:\n%s", r.Stdout)
	}
	if m := attestedRe.FindStringSubmatch(r.Stdout); m == nil || m[1] != "0" || m[2] != "4" {
		t.Fatalf("re-push attested:\n%s", r.Stdout)
	}
	if after := sigDigest(t, base, index.String()); after != before || before == "" {
		t.Fatalf("re-push changed the signature tag: %s -> %s", before, after)
	}

	// Tamper: the index's signature replaced by a platform manifest's.
	var amd64 string
	for p, d := range plats {
		if strings.HasSuffix(p, "amd64") {
			amd64 = d
		}
	}
	tamper(t, base, index.String(), amd64)
	if out, ok := cosignVerify(t, pub, base+":latest"); ok {
		t.Fatalf("cosign accepted a tampered signature:\n%s", out)
	}
	mustVerify(t, pub, base+"@"+amd64, amd64)
	r = e.mustRun(t, 1, "verify")
	wantOut(t, r, "verify of a tampered signature", "yocto/container-base:sha256-"+index.Hex+".sig: no valid signature by this registry's key")
}

// tamper rewrites the signature tag of manifest so that its layer carries
// the signature (a valid one, of another payload) from other's.
func tamper(t *testing.T, repo, manifest, other string) {
	t.Helper()
	get := func(d string) (name.Reference, *v1.Manifest) {
		ref, _ := name.ParseReference(repo+":"+strings.Replace(d, ":", "-", 1)+".sig", name.Insecure)
		desc, err := remote.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			t.Fatal(err)
		}
		return ref, m
	}
	ref, m := get(manifest)
	_, o := get(other)
	for i := range m.Layers {
		m.Layers[i].Annotations["dev.cosignproject.cosign/signature"] = o.Layers[0].Annotations["dev.cosignproject.cosign/signature"]
	}
	raw, _ := json.Marshal(m)
	if err := remote.Put(ref, rawManifest(raw)); err != nil {
		t.Fatal(err)
	}
}

type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error)        { return r, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// A release key made by cosign generate-key-pair, its passphrase in a 0600
// file: push and import --sign sign with it and cosign verifies with
// cosign's own public key; an import without --sign stays unsigned. verify
// reports the three problems (a manifest not signed, one signed by another
// key, an orphaned signature tag); gc --delete-untagged drops the orphan
// and keeps every live signature, and delete takes an image's signatures
// with it.
func TestSignExternalKeyImportVerifyGC(t *testing.T) {
	keys := t.TempDir()
	pw := map[string]string{"COSIGN_PASSWORD": "release pass"}
	if out, ok := cosign(t, keys, pw, "generate-key-pair"); !ok {
		t.Fatalf("cosign generate-key-pair:\n%s", out)
	}
	passFile := filepath.Join(keys, "pass")
	if err := os.WriteFile(passFile, []byte("release pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "images")
	if _, err := sample.WriteTree(root, sample.DefaultBuilds()); err != nil {
		t.Fatal(err)
	}
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SIGN": "1",
		"CONTAINER_REGISTRY_SIGNING_KEY": filepath.Join(keys, "cosign.key"), "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": passFile})
	if _, err := os.Stat(filepath.Join(e.Storage, "pki", "signing.key")); err == nil {
		t.Fatal("a key was generated beside CONTAINER_REGISTRY_SIGNING_KEY")
	}
	releasePub := filepath.Join(keys, "cosign.pub")
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "app-server", "--strategy", "latest")
	mustVerify(t, releasePub, e.URL+"/yocto/app-server:latest", "")
	mustVerify(t, filepath.Join(e.Storage, "pki", "signing.pub"), e.URL+"/yocto/app-server:latest", "")

	// The passphrase from the environment, as cosign takes it, works too;
	// a wrong one fails before anything is pushed.
	r := e.RunEnv(map[string]string{"CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": "", "COSIGN_PASSWORD": "wrong"}, "push", "container-base", "--strategy", "latest")
	if r.Code == 0 || !strings.Contains(r.Out(), "wrong passphrase") {
		t.Fatalf("push with a wrong passphrase: exit %d\n%s", r.Code, r.Out())
	}

	src := testreg.New(t)
	multiArchSource(t, src.Host, "lib/thirdparty:1.0")
	r = e.mustRun(t, 0, "import", src.Host+"/lib/thirdparty:1.0", "approved", "--sign")
	wantOut(t, r, "import --sign", "signed: sha256:", "key:       sha256:")
	raw, plats := rawIndex(t, e.URL+"/yocto/approved:1.0")
	index, _, _ := v1.SHA256(strings.NewReader(raw))
	mustVerify(t, releasePub, e.URL+"/yocto/approved:1.0", index.String())
	for _, d := range plats {
		mustVerify(t, releasePub, e.URL+"/yocto/approved@"+d, d)
	}
	e.mustRun(t, 0, "verify")

	// Three problems.
	e.mustRun(t, 0, "import", src.Host+"/lib/thirdparty:1.0", "unsigned")
	if out, ok := cosignVerify(t, releasePub, e.URL+"/yocto/unsigned:1.0"); ok {
		t.Fatalf("an import without --sign verifies:\n%s", out)
	}
	other := t.TempDir()
	if out, ok := cosign(t, other, map[string]string{"COSIGN_PASSWORD": "x"}, "generate-key-pair"); !ok {
		t.Fatal(out)
	}
	rawU, platsU := rawIndex(t, e.URL+"/yocto/unsigned:1.0")
	unsignedIndex, _, _ := v1.SHA256(strings.NewReader(rawU))
	if out, ok := cosign(t, other, map[string]string{"COSIGN_PASSWORD": "x"}, "sign", "--key", "cosign.key", "--tlog-upload=false",
		"--allow-http-registry", "--yes", e.URL+"/yocto/unsigned@"+unsignedIndex.String()); !ok {
		t.Fatalf("cosign sign with another key:\n%s", out)
	}
	orphan := "sha256-" + strings.Repeat("0", 64) + ".sig"
	sigRef, _ := name.ParseReference(e.URL+"/yocto/approved:"+strings.Replace(index.String(), ":", "-", 1)+".sig", name.Insecure)
	sig, err := remote.Get(sigRef)
	if err != nil {
		t.Fatal(err)
	}
	orphanRef, _ := name.NewTag(e.URL+"/yocto/approved:"+orphan, name.Insecure)
	if err := remote.Tag(orphanRef, sig); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(t, 1, "verify")
	var amd64 string
	for p, d := range platsU {
		if strings.HasSuffix(p, "amd64") {
			amd64 = d
		}
	}
	wantOut(t, r, "verify with three problems",
		"yocto/unsigned:1.0: manifest "+amd64+" is not signed",
		"yocto/unsigned:sha256-"+unsignedIndex.Hex+".sig: no valid signature by this registry's key",
		"yocto/approved:"+orphan+": orphaned signature")
	r = e.Run("verify", "--json")
	var js struct {
		Signatures, Signed int
		Problems           []string
	}
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil || r.Code != 1 || js.Signatures == 0 || js.Signed == 0 {
		t.Fatalf("verify --json: %v\n%s", err, r.Out())
	}
	r = e.mustRun(t, 0, "tags", "unsigned", "--json")
	if !strings.Contains(r.Stdout, `"signed": false`) || !strings.Contains(r.Stdout, `"others": 1`) {
		t.Errorf("tags --json of an image signed by another key:\n%s", r.Stdout)
	}
	r = e.mustRun(t, 0, "tags", "approved", "--json")
	if !strings.Contains(r.Stdout, `"signed": true`) || !strings.Contains(r.Stdout, `"signed_by": [`) {
		t.Errorf("tags --json of a signed image:\n%s", r.Stdout)
	}

	// delete takes the image's signatures; gc --delete-untagged drops the
	// orphan and keeps what signs live images.
	r = e.mustRun(t, 0, "delete", "unsigned:1.0")
	wantOut(t, r, "delete of a signed image", "removed its signature yocto/unsigned:sha256-"+unsignedIndex.Hex+".sig")
	e.mustRun(t, 0, "gc", "--delete-untagged", "--yes")
	r = e.mustRun(t, 0, "verify")
	wantOut(t, r, "verify after gc", "OK: no problems found")
	mustVerify(t, releasePub, e.URL+"/yocto/approved:1.0", index.String())
	for _, d := range plats {
		mustVerify(t, releasePub, e.URL+"/yocto/approved@"+d, d)
	}
	mustVerify(t, releasePub, e.URL+"/yocto/app-server:latest", "")
}

// Retention: three signed builds, prune --keep 1 --yes; the kept build's
// signatures verify, the pruned builds' signatures are gone with them.
func TestSignPrune(t *testing.T) {
	testtool.Need(t, "skopeo")
	root := filepath.Join(t.TempDir(), "images")
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SIGN": "1"})
	e.mustRun(t, 0, "start")
	var indexes []string
	for n := 1; n <= 3; n++ {
		pushBuild(t, e, root, n)
		raw, _ := rawIndex(t, e.URL+"/yocto/app:latest")
		d, _, _ := v1.SHA256(strings.NewReader(raw))
		indexes = append(indexes, d.String())
	}
	e.mustRun(t, 0, "prune", "--keep", "1", "--yes")
	r := e.mustRun(t, 0, "verify")
	wantOut(t, r, "verify after prune", "OK: no problems found")
	keptSigned(t, filepath.Join(e.Storage, "pki", "signing.pub"), e, indexes)
}

// keptSigned checks, after a prune that kept the newest of the builds
// whose indexes are indexes, that every tag of app still verifies through
// e, latest as the newest, and that the pruned builds' signatures are gone.
func keptSigned(t *testing.T, pub string, e *Env, indexes []string) {
	t.Helper()
	mustVerify(t, pub, e.URL+"/yocto/app:latest", indexes[len(indexes)-1])
	for _, tag := range listTags(t, e, "app") {
		if !strings.HasSuffix(tag, ".sig") && !strings.HasSuffix(tag, ".att") {
			mustVerify(t, pub, e.URL+"/yocto/app:"+tag, "")
		}
	}
	for _, d := range indexes[:len(indexes)-1] {
		if s := sigDigest(t, e.URL+"/yocto/app", d); s != "" {
			t.Errorf("the signature of pruned build %s stays", d)
		}
	}
}

// On S3 with redis, two replicas sharing a release key: three signed
// builds pushed through one replica, prune --keep 1 and gc
// --delete-untagged through the other; the kept build's signatures verify
// through both replicas, the pruned builds' are gone, verify is clean.
func TestS3SignPruneGC(t *testing.T) {
	keys := t.TempDir()
	if out, ok := cosign(t, keys, map[string]string{"COSIGN_PASSWORD": "farm"}, "generate-key-pair"); !ok {
		t.Fatalf("cosign generate-key-pair:\n%s", out)
	}
	passFile := filepath.Join(keys, "pass")
	if err := os.WriteFile(passFile, []byte("farm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "images")
	c := newCluster(t, 2, true, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SIGN": "1",
		"CONTAINER_REGISTRY_SIGNING_KEY": filepath.Join(keys, "cosign.key"), "CONTAINER_REGISTRY_SIGNING_PASSWORD_FILE": passFile})
	a, b := c.replicas[0], c.replicas[1]
	pub := filepath.Join(keys, "cosign.pub")
	var indexes []string
	for n := 1; n <= 3; n++ {
		r := pushBuild(t, a, root, n)
		if m := signedRe.FindStringSubmatch(r.Stdout); m == nil || m[1] == "0" {
			t.Fatalf("push %d signed nothing:\n%s", n, r.Stdout)
		}
		raw, _ := rawIndex(t, a.URL+"/yocto/app:latest")
		d, _, _ := v1.SHA256(strings.NewReader(raw))
		indexes = append(indexes, d.String())
	}
	b.mustRun(t, 0, "prune", "--keep", "1", "--yes")
	b.mustRun(t, 0, "gc", "--delete-untagged", "--yes")
	wantOut(t, a.mustRun(t, 0, "verify"), "verify after prune and gc", "OK: no problems found")
	for _, e := range []*Env{a, b} {
		keptSigned(t, pub, e, indexes)
	}
}

// Secure mode (TLS with the generated CA, htpasswd): push signs through
// the authenticated client; cosign, given the CA and the credentials in a
// Docker config, verifies the signature and the SBOM attestation; verify
// is clean.
func TestSignSecure(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	if _, err := sample.WriteTree(root, sample.DefaultBuilds()); err != nil {
		t.Fatal(err)
	}
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_SIGN": "1"})
	e.mustRun(t, 0, "start")
	r := e.mustRun(t, 0, "push", "container-base", "--strategy", "latest")
	if m := signedRe.FindStringSubmatch(r.Stdout); m == nil || m[1] != "3" {
		t.Fatalf("secure push signed:\n%s", r.Stdout)
	}
	pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
	if err != nil {
		t.Fatal(err)
	}
	dockerDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("yocto:" + strings.TrimSpace(string(pw))))
	cfg := `{"auths":{"` + e.URL + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DOCKER_CONFIG": dockerDir}
	pub := filepath.Join(e.Storage, "pki", "signing.pub")
	ca := filepath.Join(e.Storage, "pki", "ca.crt")
	ref := e.URL + "/yocto/container-base:latest"
	out, ok := cosign(t, "", env, "verify", "--key", pub, "--insecure-ignore-tlog", "--registry-cacert", ca, ref)
	if !ok || !strings.Contains(out, "The signatures were verified against the specified public key") {
		t.Fatalf("cosign verify over TLS with auth:\n%s", out)
	}
	if out, ok := cosign(t, "", nil, "verify", "--key", pub, "--insecure-ignore-tlog", "--registry-cacert", ca, ref); ok {
		t.Fatalf("cosign verified without credentials:\n%s", out)
	}
	wantOut(t, e.mustRun(t, 0, "verify"), "secure verify", "OK: no problems found")
}
