package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// The attached build documents (issue 13, "attach on push"): push finds
// each image's SPDX, CVE-check SPDX and package list of the same build,
// attaches them as OCI artifacts whose subject is the platform manifest,
// and `sbom`, `tags --json` and an independent OCI 1.1 client (oras-go)
// find them. Our serve has the referrers API, so nothing there takes the
// referrers tag schema (sha256-<hex> tags); Debian's docker-registry has
// none, and the fallback is tested against it.

const (
	spdxType     = "application/spdx+json"
	cveType      = "application/vnd.yocto.sbom-cve-check.spdx+json"
	manifestType = "application/vnd.yocto.image-manifest.v1+text"
)

// deployDoc reads a document the sample tree wrote beside a build.
func deployDoc(t *testing.T, root, machine, imageName, suffix string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, machine, imageName+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// orasRepo is an oras-go client of repo on the plain-HTTP registry addr.
func orasRepo(t *testing.T, addr, repo string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(addr + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

// orasPlatform resolves tag with oras-go and returns the image manifest
// of os/arch from its index.
func orasPlatform(t *testing.T, r *remote.Repository, tag, arch string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	desc, err := r.Resolve(ctx, tag)
	if err != nil {
		t.Fatalf("oras resolve %s: %v", tag, err)
	}
	raw, err := content.FetchAll(ctx, r, desc)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.Architecture == arch {
			return m
		}
	}
	t.Fatalf("%s has no %s entry: %s", tag, arch, raw)
	return ocispec.Descriptor{}
}

// orasReferrers lists the referrers of subject with oras-go (the referrers
// API, or the tag schema when the registry answers 404) and fetches each
// artifact's document: artifactType -> document.
func orasReferrers(t *testing.T, r *remote.Repository, subject ocispec.Descriptor) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	var refs []ocispec.Descriptor
	if err := r.Referrers(ctx, subject, "", func(page []ocispec.Descriptor) error {
		refs = append(refs, page...)
		return nil
	}); err != nil {
		t.Fatalf("oras referrers of %s: %v", subject.Digest, err)
	}
	docs := map[string][]byte{}
	for _, ref := range refs {
		raw, err := content.FetchAll(ctx, r, ref)
		if err != nil {
			t.Fatalf("oras fetch %s: %v", ref.Digest, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 {
			t.Fatalf("artifact %s: %v %s", ref.Digest, err, raw)
		}
		if m.Subject == nil || m.Subject.Digest != subject.Digest || m.ArtifactType != ref.ArtifactType {
			t.Fatalf("artifact %s: subject %v, artifactType %q (listed as %q)", ref.Digest, m.Subject, m.ArtifactType, ref.ArtifactType)
		}
		if m.Config.MediaType != ocispec.MediaTypeEmptyJSON {
			t.Errorf("artifact %s: config %s, want the empty descriptor", ref.Digest, m.Config.MediaType)
		}
		blob, err := content.FetchAll(ctx, r.Blobs(), m.Layers[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := docs[ref.ArtifactType]; dup {
			t.Errorf("two referrers of type %s", ref.ArtifactType)
		}
		docs[ref.ArtifactType] = blob
	}
	return docs
}

// Push to our serve attaches the three documents of the newest build to
// each platform manifest; a re-push sends nothing; sbom fetches each
// platform's document; tags --json lists them; oras-go finds and fetches
// the same documents; --no-attach pushes none.
func TestAttachOnPush(t *testing.T) {
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	r := e.mustRun(t, 0, "push", "container-base", "--tag", "v1")
	t.Logf("push:\n%s", r.Stdout)
	x86, arm := "container-base-qemux86-64.rootfs-20260108123456", "container-base-qemuarm64.rootfs-20260108130000"
	wantOut(t, r, "push", "Attached: 6 document(s), 6 new, 0 unchanged",
		"container-base (amd64): "+x86+".spdx.json as "+spdxType,
		"container-base (amd64): "+x86+".sbom-cve-check.spdx.json as "+cveType,
		"container-base (arm64): "+arm+".manifest as "+manifestType)
	if strings.Contains(r.Stdout, "20260101080000.spdx") {
		t.Errorf("the older build's SBOM was attached:\n%s", r.Stdout)
	}
	r = e.mustRun(t, 0, "push", "container-base", "--tag", "v1")
	wantOut(t, r, "re-push", "Attached: 6 document(s), 0 new, 6 unchanged", "uploaded 0 bytes")
	// The referrers API, not the tag schema: no note about the referrers
	// tag, no sha256- tag in the repository.
	if strings.Contains(r.Stdout, "referrers tag") {
		t.Errorf("push against serve used the referrers tag:\n%s", r.Stdout)
	}
	if tags := skopeo(t, "list-tags", "--tls-verify=false", "docker://"+e.URL+"/yocto/container-base"); strings.Contains(tags, "sha256-") {
		t.Errorf("serve holds a referrers tag: %s", tags)
	}

	for _, c := range []struct{ machine, arch, name string }{{"qemux86-64", "amd64", x86}, {"qemuarm64", "arm64", arm}} {
		out := filepath.Join(t.TempDir(), "sbom.spdx.json")
		r = e.mustRun(t, 0, "sbom", "container-base:v1", "--platform", "linux/"+c.arch, "--output", out)
		wantOut(t, r, "sbom", "from referrers API")
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, deployDoc(t, root, c.machine, c.name, ".spdx.json")) {
			t.Fatalf("sbom --platform linux/%s: %v, not %s.spdx.json:\n%.300s", c.arch, err, c.name, got)
		}
		var doc map[string]any
		if err := json.Unmarshal(got, &doc); err != nil || doc["@context"] != sample.SPDXContext {
			t.Fatalf("not SPDX 3.0 JSON-LD: %v %v", err, doc["@context"])
		}
		r = e.mustRun(t, 0, "sbom", "container-base:v1", "--platform", "linux/"+c.arch, "--kind", "manifest")
		if r.Stdout != string(deployDoc(t, root, c.machine, c.name, ".manifest")) {
			t.Errorf("sbom --kind manifest %s:\n%s", c.arch, r.Stdout)
		}
		// oras-go, an OCI 1.1 client that is not ours, told to use the
		// referrers API (it fails where there is none).
		or := orasRepo(t, e.URL, "yocto/container-base")
		if err := or.SetReferrersCapability(true); err != nil {
			t.Fatal(err)
		}
		docs := orasReferrers(t, or, orasPlatform(t, or, "v1", c.arch))
		for typ, suffix := range map[string]string{spdxType: ".spdx.json", cveType: ".sbom-cve-check.spdx.json", manifestType: ".manifest"} {
			if !bytes.Equal(docs[typ], deployDoc(t, root, c.machine, c.name, suffix)) {
				t.Errorf("oras-go: %s referrer of %s is not %s%s", typ, c.arch, c.name, suffix)
			}
		}
		if len(docs) != 3 {
			t.Errorf("oras-go: %d referrers of %s, want 3", len(docs), c.arch)
		}
	}
	// Two platforms: sbom asks which.
	r = e.mustRun(t, 2, "sbom", "container-base:v1")
	wantOut(t, r, "sbom without --platform", "has 2 platforms (linux/amd64, linux/arm64): choose one with --platform")

	r = e.mustRun(t, 0, "tags", "container-base", "--json")
	var tags struct {
		Artifacts []struct {
			Tag, Platform string
			Artifacts     []struct {
				ArtifactType string `json:"artifact_type"`
				Title        string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &tags); err != nil || len(tags.Artifacts) != 2 {
		t.Fatalf("tags --json: %v\n%s", err, r.Stdout)
	}
	for _, ia := range tags.Artifacts {
		if ia.Tag != "v1" || len(ia.Artifacts) != 3 {
			t.Errorf("tags --json entry %+v", ia)
		}
	}

	// --no-attach: app-server goes up bare; sbom says nothing is attached.
	r = e.mustRun(t, 0, "push", "app-server", "--tag", "v1", "--no-attach")
	if strings.Contains(r.Stdout, "attached:") || strings.Contains(r.Stdout, "Attached:") {
		t.Errorf("--no-attach attached:\n%s", r.Stdout)
	}
	r = e.mustRun(t, 1, "sbom", "app-server:v1", "--platform", "linux/arm64")
	wantOut(t, r, "sbom of a bare image", "no such document attached: nothing of type application/spdx+json")
	sbomBadInput(t, e)
}

// sbomBadInput: a clear message and the right exit status, no file
// written.
func sbomBadInput(t *testing.T, e *Env) {
	t.Helper()
	r := e.mustRun(t, 1, "sbom", "nope:v1")
	wantOut(t, r, "unknown image", "Image not found: yocto/nope:v1")
	r = e.mustRun(t, 2, "sbom", "container-base:v1", "--platform", "arm64")
	wantOut(t, r, "bad platform", `--platform "arm64": want OS/ARCH`)
	r = e.mustRun(t, 2, "sbom", "container-base:v1", "--platform", "linux/arm64", "--kind", "spdx")
	wantOut(t, r, "bad kind", "--kind")
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	r = e.mustRun(t, 1, "sbom", "container-base:v1", "--platform", "linux/arm64", "--output", filepath.Join(file, "x.json"))
	wantOut(t, r, "unwritable output", "--output "+filepath.Join(file, "x.json"))
}

// dockerRegistry starts Debian's docker-registry (distribution 2.8, no
// referrers API) on a free port with its data in a temporary directory
// and returns its host:port; it is stopped when the test ends.
func dockerRegistry(t *testing.T) string {
	t.Helper()
	bin := testtool.Need(t, "docker-registry")
	dir := t.TempDir()
	addr := "127.0.0.1:" + FreePort(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Env = baseEnv()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		log.Close()
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not answer on %s:\n%s", addr, b)
		}
	}
}

// Against docker-registry 2.8 (no referrers API) the documents go into
// the referrers tag schema's index (sha256-<hex>); sbom and oras-go read
// them back through it.
func TestAttachFallbackDockerRegistry(t *testing.T) {
	addr := dockerRegistry(t)
	root := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_URL": addr})
	r := e.mustRun(t, 0, "push", "container-base", "--tag", "v1")
	t.Logf("push:\n%s", r.Stdout)
	wantOut(t, r, "push", "Attached: 6 document(s), 6 new, 0 unchanged", "in the referrers tag: no referrers API")
	r = e.mustRun(t, 0, "push", "container-base", "--tag", "v1")
	wantOut(t, r, "re-push", "Attached: 6 document(s), 0 new, 6 unchanged", "uploaded 0 bytes")

	arm := "container-base-qemuarm64.rootfs-20260108130000"
	r = e.mustRun(t, 0, "sbom", "container-base:v1", "--platform", "linux/arm64", "--kind", "cve")
	if r.Stdout != string(deployDoc(t, root, "qemuarm64", arm, ".sbom-cve-check.spdx.json")) {
		t.Fatalf("sbom --kind cve from docker-registry:\n%.300s", r.Stdout)
	}
	or := orasRepo(t, addr, "yocto/container-base")
	subject := orasPlatform(t, or, "v1", "arm64")
	if err := or.SetReferrersCapability(false); err != nil { // the tag schema, explicitly
		t.Fatal(err)
	}
	docs := orasReferrers(t, or, subject)
	if len(docs) != 3 || !bytes.Equal(docs[spdxType], deployDoc(t, root, "qemuarm64", arm, ".spdx.json")) {
		t.Fatalf("oras-go through the referrers tag: %d documents", len(docs))
	}
	tag := strings.Replace(subject.Digest.String(), ":", "-", 1)
	if !referrersTagRe.MatchString(tag) || !strings.Contains(skopeo(t, "list-tags", "--tls-verify=false", "docker://"+addr+"/yocto/container-base"), tag) {
		t.Fatalf("referrers tag %s not listed", tag)
	}
}

// Concurrent pushers attaching different SBOMs to the same image on a
// registry without the referrers API: the read-modify-writes of the
// referrers tag lose no entry (go-containerregistry's remote.Write would:
// it reads, appends and writes once).
func TestAttachConcurrentFallback(t *testing.T) {
	addr := dockerRegistry(t)
	const pushers = 6
	b := sample.Build{Spec: sample.Spec{Name: "shared", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}
	var roots []string
	for i := range pushers {
		root := filepath.Join(t.TempDir(), "images")
		if _, err := sample.WriteTree(root, []sample.Build{b}); err != nil {
			t.Fatal(err)
		}
		// The same image, a different SBOM each: one more referrer each.
		p := filepath.Join(root, b.Machine, b.ImageName()+".spdx.json")
		doc, _ := os.ReadFile(p)
		if err := os.WriteFile(p, append(doc, []byte(fmt.Sprintf("\n%*s", i+1, ""))...), 0o644); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
	}
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_URL": addr, "CONTAINER_REGISTRY_ATTACH": "sbom"})
	// The image first, alone: concurrent uploads of one image's blobs to
	// distribution 2.8 are another matter (see the report of issue 13).
	if r := e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": roots[0]}, "push", "shared", "--tag", "v1", "--no-attach"); r.Code != 0 {
		t.Fatalf("first push: %s", r.Out())
	}
	var wg sync.WaitGroup
	results := make([]Result, pushers)
	for i, root := range roots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.RunEnv(map[string]string{"DEPLOY_DIR_IMAGES": root}, "push", "shared", "--tag", "v1")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("pusher %d: exit %d\n%s", i, r.Code, r.Out())
		}
	}
	or := orasRepo(t, addr, "yocto/shared")
	subject := orasPlatform(t, or, "v1", "amd64")
	var sboms, cves int
	if err := or.Referrers(context.Background(), subject, "", func(page []ocispec.Descriptor) error {
		for _, d := range page {
			switch d.ArtifactType {
			case spdxType:
				sboms++
			case cveType:
				cves++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if sboms != pushers || cves != 1 {
		for i, r := range results {
			t.Logf("pusher %d:\n%s", i, r.Stdout)
		}
		t.Fatalf("referrers tag lists %d SBOMs and %d CVE-check SBOMs, want %d and 1", sboms, cves, pushers)
	}
}

// Secure mode (TLS + htpasswd): the documents go up and come back with
// the local registry's CA and credentials; a wrong password is refused
// before anything is fetched.
func TestAttachSecureMode(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	b := sample.Build{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}
	if _, err := sample.WriteTree(root, []sample.Build{b}); err != nil {
		t.Fatal(err)
	}
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SECURE": "1"})
	e.mustRun(t, 0, "start")
	r := e.mustRun(t, 0, "push", "app", "--tag", "v1")
	wantOut(t, r, "secure push", "Attached: 3 document(s), 3 new, 0 unchanged")
	// One platform: no --platform needed.
	r = e.mustRun(t, 0, "sbom", "app:v1")
	if r.Stdout != string(deployDoc(t, root, b.Machine, b.ImageName(), ".spdx.json")) {
		t.Fatalf("sbom in secure mode:\n%.300s", r.Stdout)
	}
	r = e.RunEnv(map[string]string{"CONTAINER_REGISTRY_PASSWORD": "wrong"}, "sbom", "app:v1")
	if r.Code != 1 || !strings.Contains(r.Stdout, "rejected the credentials") {
		t.Fatalf("wrong password: %d\n%s", r.Code, r.Out())
	}
}
