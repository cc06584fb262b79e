package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// badCase is one row of the bad input table: what is run, on which
// registry's helper (or the tool itself), the message fragment it must
// print and the exit status it must return.
type badCase struct {
	name string
	on   *Env              // helper script to run; nil runs the tool itself
	env  map[string]string // extra environment
	args []string
	want string // message fragment (stdout through the script, stdout+stderr for the tool)
	code int    // exit status
}

// goodLayout writes a fresh single-image OCI layout (image "badimg") and
// returns its directory and the path of its first layer blob.
func goodLayout(t *testing.T) (dir, layerBlob string) {
	t.Helper()
	dirs, err := sample.WriteTree(filepath.Join(t.TempDir(), "images"), []sample.Build{
		{Spec: sample.Spec{Name: "badimg", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260701000000"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	img, err := p.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	return dirs[0], filepath.Join(dirs[0], "blobs", "sha256", d.Hex)
}

// manifestBlob is the path of the manifest blob of a goodLayout.
func manifestBlob(t *testing.T, dir string) string {
	return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(layoutManifest(t, dir), "sha256:"))
}

// dumpFile writes an env dump of vars followed by raw lines.
func dumpFile(t *testing.T, vars map[string]string, raw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "env.dump")
	if err := os.WriteFile(p, []byte(DumpText(vars)+raw), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The bad input table: every case fails with its message and exit status,
// and neither registry's tags -> digests change.
func TestBadInput(t *testing.T) {
	root := deployTree(t)
	plain := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	plain.mustRun(t, 0, "start")
	plain.mustRun(t, 0, "push", "--strategy", "latest")
	secure := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SECURE": "1"})
	secure.mustRun(t, 0, "start")
	secure.mustRun(t, 0, "push", "--strategy", "latest")
	before := map[*Env]map[string]string{plain: plain.snapshot(t), secure: secure.snapshot(t)}
	if len(before[plain]) == 0 || len(before[secure]) == 0 {
		t.Fatalf("nothing pushed: %v", before)
	}
	// A secure registry whose password file was then edited by hand
	// (trailing spaces), and one generated but never started. (One tag
	// only: reading a secure registry costs a bcrypt per request, and the
	// table reads every registry after every row.)
	edited := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_SECURE": "1"})
	edited.mustRun(t, 0, "start")
	edited.mustRun(t, 0, "push", "app-server", "--strategy", "latest")
	before[edited] = edited.snapshot(t)
	editedPw := filepath.Join(edited.Storage, "auth", "password")
	if pw, err := os.ReadFile(editedPw); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(editedPw, []byte(strings.TrimSpace(string(pw))+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})

	// Corrupt OCI layouts.
	missingBlob, blob := goodLayout(t)
	os.Remove(blob)
	mismatch, blob := goodLayout(t)
	os.WriteFile(blob, []byte("not the layer that was hashed"), 0o644)
	missingManifest, _ := goodLayout(t)
	os.Remove(manifestBlob(t, missingManifest))
	truncated, _ := goodLayout(t)
	idxJSON, _ := os.ReadFile(filepath.Join(truncated, "index.json"))
	os.WriteFile(filepath.Join(truncated, "index.json"), idxJSON[:len(idxJSON)/2], 0o644)
	notJSONIndex, _ := goodLayout(t)
	os.WriteFile(filepath.Join(notJSONIndex, "index.json"), []byte("hello\n"), 0o644)
	badSchema, _ := goodLayout(t)
	os.WriteFile(filepath.Join(badSchema, "index.json"), []byte(`{"schemaVersion":2,"manifests":"none"}`), 0o644)
	noManifests, _ := goodLayout(t)
	os.WriteFile(filepath.Join(noManifests, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644)
	sameSize, blob := goodLayout(t)
	data, _ := os.ReadFile(blob)
	os.WriteFile(blob, bytes.Repeat([]byte("x"), len(data)), 0o644)
	symOut, blob := goodLayout(t)
	os.Remove(blob)
	os.Symlink("/etc/hostname", blob)
	symOutSame, blob := goodLayout(t)
	outside := filepath.Join(t.TempDir(), "stolen")
	data, _ = os.ReadFile(blob)
	os.WriteFile(outside, data, 0o644)
	os.Remove(blob)
	os.Symlink(outside, blob)
	emptyDir := t.TempDir()
	truncArchive := filepath.Join(t.TempDir(), "cut.tar")
	good, _ := goodLayout(t)
	tarDir(t, good, truncArchive)
	st, _ := os.Stat(truncArchive)
	os.Truncate(truncArchive, st.Size()/3)
	brokenTree := filepath.Join(t.TempDir(), "images")
	dirs, _ := sample.WriteTree(brokenTree, []sample.Build{{Spec: sample.Spec{Name: "container-base", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260701000000"}, Latest: true}})
	os.WriteFile(filepath.Join(dirs[0], "index.json"), []byte("{"), 0o644)

	// Env dumps: they name a scratch storage, never the registries'.
	scratch := func() map[string]string {
		return map[string]string{"TOPDIR": t.TempDir(), "CONTAINER_REGISTRY_STORAGE": filepath.Join(t.TempDir(), "s"), "CONTAINER_REGISTRY_URL": "localhost:5999"}
	}
	unterminated := dumpFile(t, scratch(), "CONTAINER_REGISTRY_NAMESPACE=\"yocto\nPV=\"1.0\"\n")
	unterminatedEOF := dumpFile(t, scratch(), "PV=\"1.0\n")
	malformed := dumpFile(t, scratch(), "this is not an assignment\n")
	trailing := dumpFile(t, scratch(), "PV=\"1.0\" trailing\n")
	withVars := func(kv ...string) string {
		v := scratch()
		for i := 0; i+1 < len(kv); i += 2 {
			v[kv[i]] = kv[i+1]
		}
		return dumpFile(t, v, "")
	}
	dest := t.TempDir()

	// Values no registry configuration may hold; each names a storage
	// directory that must not come into being (checked after the table).
	var mustNotExist []string
	scratchStorage := func(kv ...string) (dump, storage string) {
		v := scratch()
		for i := 0; i+1 < len(kv); i += 2 {
			v[kv[i]] = kv[i+1]
		}
		mustNotExist = append(mustNotExist, v["CONTAINER_REGISTRY_STORAGE"])
		return dumpFile(t, v, ""), v["CONTAINER_REGISTRY_STORAGE"]
	}
	secureDump, _ := scratchStorage("CONTAINER_REGISTRY_SECURE", "1")
	nonUTF8Parent := t.TempDir()
	nonUTF8 := filepath.Join(nonUTF8Parent, "bad\xff", "container-registry")
	nonUTF8Dump, _ := scratchStorage("CONTAINER_REGISTRY_STORAGE", nonUTF8)
	plainDump, _ := scratchStorage()
	nonUTF8Err := `CONTAINER_REGISTRY_STORAGE: "` + strings.ReplaceAll(nonUTF8, "\xff", `\xff`) + `" is not valid UTF-8`
	nulVars := scratch()
	mustNotExist = append(mustNotExist, nulVars["CONTAINER_REGISTRY_STORAGE"])
	nulDump := dumpFile(t, nulVars, "CONTAINER_REGISTRY_NAMESPACE=\"yo\x00cto\"\n")
	nulExport := dumpFile(t, nulVars, "# bitbake -e\nexport PV=\"1.0\x00\"\n")

	// Credentials files.
	cdir := t.TempDir()
	userOnly := writeFile(t, cdir, "user-only", "CONTAINER_REGISTRY_USER=yocto\n", 0o600)
	passOnly := writeFile(t, cdir, "pass-only", "CONTAINER_REGISTRY_PASSWORD=x\n", 0o600)
	notCreds := writeFile(t, cdir, "garbage", "user yocto\n", 0o600)
	notJSON := writeFile(t, cdir, "auth.json", "{", 0o600)
	otherHost := writeFile(t, cdir, "other.json", `{"auths":{"elsewhere:5000":{"auth":"eW9jdG86eA=="}}}`, 0o600)

	// Unbounded inputs (issue 11): an index.json of 10,000 entries, one of
	// 5 MiB, a manifest size of 2^62, a config file of 512 MiB behind a
	// small declared size, a blobs/sha256 directory symlinked out of the
	// layout, a sparse or compressed oci-archive, a version that is a path.
	wide, _ := goodLayout(t)
	entries := indexEntries(t, wide)
	for len(entries) < 10000 {
		entries = append(entries, entries[0])
	}
	writeIndex(t, wide, entries)
	fat, _ := goodLayout(t)
	fatIndex, _ := os.ReadFile(filepath.Join(fat, "index.json"))
	os.WriteFile(filepath.Join(fat, "index.json"), append(fatIndex, bytes.Repeat([]byte(" "), 5<<20)...), 0o644)
	hugeSize, _ := goodLayout(t)
	entries = indexEntries(t, hugeSize)
	entries[0].Size = 1 << 62
	writeIndex(t, hugeSize, entries)
	bigConfig, _ := goodLayout(t)
	cfgDigest, cfgSize := configOf(t, bigConfig)
	cfgFile := filepath.Join(bigConfig, "blobs", "sha256", strings.TrimPrefix(cfgDigest, "sha256:"))
	if err := os.Truncate(cfgFile, 512<<20); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	blobsOut, _ := goodLayout(t)
	movedBlobs := filepath.Join(t.TempDir(), "sha256")
	if err := os.Rename(filepath.Join(blobsOut, "blobs", "sha256"), movedBlobs); err != nil {
		t.Fatal(err)
	}
	os.Symlink(movedBlobs, filepath.Join(blobsOut, "blobs", "sha256"))
	sparseLayout, _ := goodLayout(t)
	hole := filepath.Join(sparseLayout, "blobs", "sha256", "hole")
	os.WriteFile(hole, nil, 0o644)
	os.Truncate(hole, 3<<30)
	sparseArchive := filepath.Join(t.TempDir(), "sparse.tar")
	if out, err := exec.Command(testtool.Need(t, "tar"), "--sparse", "--format=pax", "-C", sparseLayout, "-cf", sparseArchive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	gzArchive := filepath.Join(t.TempDir(), "good.tar.gz")
	goodArchive := filepath.Join(t.TempDir(), "good.tar")
	tarDir(t, good, goodArchive)
	if out, err := exec.Command("sh", "-c", "gzip -c < '"+goodArchive+"' > '"+gzArchive+"'").CombinedOutput(); err != nil {
		t.Fatalf("gzip: %v\n%s", err, out)
	}

	down := "localhost:" + FreePort(t)
	cases := []badCase{
		// Unbounded inputs.
		{"bounds: index.json of 10000 entries", plain, nil, []string{"push", wide, "--tag", "bad"}, "index.json lists 10000 entries; at most 4096 are supported", 1},
		{"bounds: index.json of 5 MiB", plain, nil, []string{"push", fat, "--tag", "bad"}, "more than the 4194304 allowed", 1},
		{"bounds: manifest of 2^62 bytes in index.json", plain, nil, []string{"push", hugeSize, "--tag", "bad"}, "declares 4611686018427387904 bytes; a manifest is at most 4194304", 1},
		{"bounds: config file of 512 MiB", plain, nil, []string{"push", bigConfig, "--tag", "bad"}, fmt.Sprintf("config %s: %s is 536870912 bytes, more than the %d declared", cfgDigest, cfgFile, cfgSize), 1},
		{"bounds: import a config file of 512 MiB", plain, nil, []string{"import", "oci:" + bigConfig, "badimport"}, fmt.Sprintf("blob %s is 536870912 bytes, its manifest says %d", cfgDigest, cfgSize), 1},
		{"layout: blobs/sha256 symlinked outside", plain, nil, []string{"push", blobsOut, "--tag", "bad"}, "blobs/sha256 is a symlink", 1},
		{"import: blobs/sha256 symlinked outside", plain, nil, []string{"import", "oci:" + blobsOut, "badimport"}, "blobs/sha256 is a symlink", 1},
		{"import: sparse oci-archive (tar bomb)", plain, nil, []string{"import", "oci-archive:" + sparseArchive, "badimport"}, `is a sparse file of 3221225472 bytes`, 1},
		{"import: gzip-compressed oci-archive", plain, nil, []string{"import", "oci-archive:" + gzArchive, "badimport"}, "is gzip-compressed", 1},
		{"name: --version that is a path", plain, nil, []string{"push", "app-server", "--strategy", "version", "--version", "../../x"}, `version "../../x" does not start with a letter or digit; refusing to tag it "x"`, 2},

		// Corrupt OCI layouts.
		{"layout: missing layer blob", plain, nil, []string{"push", missingBlob, "--tag", "bad"}, "is missing", 1},
		{"layout: layer digest mismatch", plain, nil, []string{"push", mismatch, "--tag", "bad"}, "its manifest says", 1},
		{"layout: layer digest mismatch, same size", plain, nil, []string{"push", sameSize, "--tag", "bad"}, "DIGEST_INVALID: provided digest did not match uploaded content", 1},
		{"layout: missing manifest blob", plain, nil, []string{"push", missingManifest, "--tag", "bad"}, "no such file or directory", 1},
		{"layout: truncated index.json", plain, nil, []string{"push", truncated, "--tag", "bad"}, "index.json: unexpected end of JSON input", 1},
		{"layout: index.json not JSON", plain, nil, []string{"push", notJSONIndex, "--tag", "bad"}, "index.json: invalid character", 1},
		{"layout: index.json with a wrong schema", plain, nil, []string{"push", badSchema, "--tag", "bad"}, "index.json: json: cannot unmarshal", 1},
		{"layout: index.json without manifests", plain, nil, []string{"push", noManifests, "--tag", "bad"}, "lists no manifests", 1},
		{"layout: blob symlink outside the layout (wrong content)", plain, nil, []string{"push", symOut, "--tag", "bad"}, "is a symlink", 1},
		{"layout: blob symlink outside the layout (right content)", plain, nil, []string{"push", symOutSame, "--tag", "bad"}, "is a symlink", 1},
		{"layout: empty directory", plain, nil, []string{"push", emptyDir, "--tag", "bad"}, "not an OCI image layout", 1},
		{"layout: broken layout in the deploy tree", plain, map[string]string{"DEPLOY_DIR_IMAGES": brokenTree}, []string{"push"}, "Error: container-base", 1},
		{"import: layout with a missing blob", plain, nil, []string{"import", "oci:" + missingBlob, "badimport"}, "is missing", 1},
		{"import: layout with a digest mismatch", plain, nil, []string{"import", "oci:" + mismatch, "badimport"}, "its manifest says", 1},
		{"import: empty directory", plain, nil, []string{"import", "oci:" + emptyDir, "badimport"}, "index.json: no such file or directory", 1},
		{"import: truncated oci-archive", plain, nil, []string{"import", "oci-archive:" + truncArchive, "badimport"}, "oci-archive " + truncArchive, 1},
		{"import: layout symlinked outside", plain, nil, []string{"import", "oci:" + symOutSame, "badimport"}, "is a symlink", 1},

		// Malformed env dumps.
		{"dump: unterminated quote", nil, nil, []string{"generate", "--env-dump", unterminated}, unterminated + ":4: CONTAINER_REGISTRY_NAMESPACE", 1},
		{"dump: unterminated quote at the end", nil, nil, []string{"generate", "--env-dump", unterminatedEOF}, "unterminated double-quoted value", 1},
		{"dump: not an assignment", nil, nil, []string{"generate", "--env-dump", malformed}, malformed + ":4: malformed line", 1},
		{"dump: text after the closing quote", nil, nil, []string{"generate", "--env-dump", trailing}, "unexpected text after closing quote", 1},
		{"dump: missing file", nil, nil, []string{"generate", "--env-dump", "/nonexistent/env.dump"}, "/nonexistent/env.dump", 2},
		{"dump: populate with a malformed dump", nil, nil, []string{"populate", "--env-dump", malformed}, "malformed line", 1},
		{"dump: URL with a scheme", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_URL", "http://localhost:5000")}, "must be host:port without a scheme", 1},
		{"dump: SECURE and INSECURE", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "1", "CONTAINER_REGISTRY_INSECURE", "1")}, "contradict each other", 1},
		{"dump: non-boolean SECURE", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "yes please")}, "is not a boolean", 1},

		// Invalid tag, namespace and image names.
		{"name: tag with a colon", plain, nil, []string{"push", "app-server", "--tag", "bad:tag"}, "invalid tag", 2},
		{"name: tag starting with a dot", plain, nil, []string{"push", "app-server", "--tag", ".hidden"}, "invalid tag", 2},
		{"name: tag of 129 characters", plain, nil, []string{"push", "app-server", "--tag", strings.Repeat("a", 129)}, "invalid tag", 2},
		{"name: namespace with upper case and a space", plain, map[string]string{"CONTAINER_REGISTRY_NAMESPACE": "Bad NS"}, []string{"push"}, "not a valid repository namespace", 1},
		{"name: namespace in the dump", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_NAMESPACE", "UPPER")}, "not a valid repository namespace", 1},
		{"name: import to an invalid image name", plain, nil, []string{"import", "oci:" + good, "Bad_Name!"}, `image name "Bad_Name!"`, 2},
		{"name: import with an invalid tag", plain, nil, []string{"import", "oci:" + good, "fine", "--tag", "bad:tag"}, `invalid tag "bad:tag"`, 2},
		{"name: delete an invalid image name", plain, nil, []string{"delete", "UPPER:latest"}, `invalid image reference "UPPER:latest"`, 2},
		{"name: delete with an invalid tag", plain, nil, []string{"delete", "app-server:bad:tag"}, `invalid image reference "app-server:bad:tag"`, 2},
		{"name: tags of an invalid image name", plain, nil, []string{"tags", "bad name!"}, `invalid image name "bad name!"`, 1},
		{"name: push an unknown image", plain, nil, []string{"push", "nosuch"}, `no image named "nosuch"`, 1},

		// Bad SAN entries.
		{"san: DNS without a name", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "1", "CONTAINER_REGISTRY_CERT_SAN", "DNS:")}, "want DNS:<name> or IP:<address>", 1},
		{"san: invalid IP", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "1", "CONTAINER_REGISTRY_CERT_SAN", "IP:999.1.1.1")}, "is not a valid IP address", 1},
		{"san: invalid DNS name", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "1", "CONTAINER_REGISTRY_CERT_SAN", "DNS:bad_host!")}, "is not a valid DNS name", 1},
		{"san: unknown type", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "1", "CONTAINER_REGISTRY_CERT_SAN", "URI:https://x")}, "unknown type", 1},
		{"san: no type", nil, nil, []string{"generate", "--env-dump", withVars("CONTAINER_REGISTRY_SECURE", "1", "CONTAINER_REGISTRY_CERT_SAN", "registry.lan")}, "want DNS:<name> or IP:<address>", 1},

		// DOCKER_OCI_RUNTIMES.
		{"runtimes: not JSON", nil, nil, []string{"target", "docker", "--env-dump", withVars("DOCKER_OCI_RUNTIMES", "{bad"), "--dest", dest}, "DOCKER_OCI_RUNTIMES: invalid JSON object", 1},
		{"runtimes: a JSON array", nil, nil, []string{"target", "docker", "--env-dump", withVars("DOCKER_OCI_RUNTIMES", `["crun"]`), "--dest", dest}, "DOCKER_OCI_RUNTIMES: invalid JSON object", 1},
		{"runtimes: a string runtime", nil, nil, []string{"target", "docker", "--env-dump", withVars("DOCKER_OCI_RUNTIMES", `{"crun": "/usr/bin/crun"}`), "--dest", dest}, `runtime "crun" must be a JSON object`, 1},

		// Signature verification payloads.
		{"target: policy with signing off", nil, nil, []string{"target", "policy", "--env-dump", withVars(), "--dest", dest}, "signing is off (CONTAINER_REGISTRY_SIGN=1 turns it on)", 1},
		{"target: oci with signing on and no key", nil, nil, []string{"target", "oci", "--env-dump", withVars("CONTAINER_REGISTRY_SIGN", "1"), "--dest", dest}, "pki/signing.pub not found", 1},

		// Credentials files with missing keys.
		{"creds: user without password", secure, nil, []string{"push", "app-server", "--tag", "bad", "--credsfile", userOnly}, "must contain CONTAINER_REGISTRY_TOKEN or both CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD", 1},
		{"creds: password without user", secure, nil, []string{"push", "app-server", "--tag", "bad", "--credsfile", passOnly}, "must contain CONTAINER_REGISTRY_TOKEN or both", 1},
		{"creds: not key=value", secure, nil, []string{"push", "app-server", "--tag", "bad", "--credsfile", notCreds}, notCreds, 1},
		{"creds: auth file not JSON", secure, nil, []string{"push", "app-server", "--tag", "bad", "--authfile", notJSON}, "not a Docker config.json", 1},
		{"creds: auth file without this registry", secure, nil, []string{"push", "app-server", "--tag", "bad", "--authfile", otherHost}, "has no credentials for " + secure.URL, 1},
		{"creds: import source credentials without password", plain, nil, []string{"import", secure.URL + "/yocto/app-server:latest", "badimport", "--src-credsfile", userOnly}, "must contain CONTAINER_REGISTRY_TOKEN or both", 1},
		{"creds: env mode without password", secure, map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "env", "CONTAINER_REGISTRY_USER": "yocto"}, []string{"push", "app-server", "--tag", "bad"}, "needs CONTAINER_REGISTRY_TOKEN or both", 1},

		// Unknown auth modes and strategies.
		{"auth: unknown --auth-mode", plain, nil, []string{"push", "--auth-mode", "bogus"}, `unknown auth mode "bogus"`, 1},
		{"auth: unknown CONTAINER_REGISTRY_AUTH_MODE", plain, map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "bogus"}, []string{"push"}, `unknown mode "bogus"`, 1},
		{"auth: authfile mode without a file", plain, map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "authfile"}, []string{"push"}, "needs CONTAINER_REGISTRY_AUTHFILE", 1},
		{"strategy: unknown --strategy", plain, nil, []string{"push", "--strategy", "latest bogus"}, `unknown strategy "bogus"`, 2},
		{"strategy: unknown CONTAINER_REGISTRY_TAG_STRATEGY", plain, map[string]string{"CONTAINER_REGISTRY_TAG_STRATEGY": "nope"}, []string{"push"}, `unknown strategy "nope"`, 1},
		{"strategy: invalid characters", plain, nil, []string{"push", "--strategy", "latest;rm"}, "invalid characters", 2},

		// Unreachable or wrong-protocol registry, wrong password.
		{"url: nothing listening", plain, map[string]string{"CONTAINER_REGISTRY_URL": down}, []string{"push"}, "Registry not responding at http://" + down, 1},
		{"url: list, nothing listening", plain, map[string]string{"CONTAINER_REGISTRY_URL": down}, []string{"list"}, "Registry not responding at http://" + down, 1},
		{"url: HTTP against the TLS registry (push)", plain, map[string]string{"CONTAINER_REGISTRY_URL": secure.URL}, []string{"push"}, "speaks HTTPS, not HTTP", 1},
		{"url: HTTP against the TLS registry (list)", plain, map[string]string{"CONTAINER_REGISTRY_URL": secure.URL}, []string{"list"}, "speaks HTTPS, not HTTP", 1},
		{"url: HTTPS against the plain registry (push)", secure, map[string]string{"CONTAINER_REGISTRY_URL": plain.URL}, []string{"push"}, "speaks plain HTTP, not HTTPS", 1},
		{"url: HTTPS against the plain registry (list)", secure, map[string]string{"CONTAINER_REGISTRY_URL": plain.URL}, []string{"list"}, "speaks plain HTTP, not HTTPS", 1},
		{"password: wrong CONTAINER_REGISTRY_PASSWORD (push)", secure, map[string]string{"CONTAINER_REGISTRY_PASSWORD": "wrong"}, []string{"push"}, `rejected the credentials of user "yocto"`, 1},
		{"password: wrong --creds", secure, nil, []string{"push", "app-server", "--tag", "bad", "--creds", "yocto:wrong"}, "rejected the credentials from --creds (user yocto)", 1},
		{"password: wrong password (list)", secure, map[string]string{"CONTAINER_REGISTRY_PASSWORD": "wrong"}, []string{"list"}, `rejected the credentials of user "yocto"`, 1},
		{"password: wrong password (delete)", secure, map[string]string{"CONTAINER_REGISTRY_PASSWORD": "wrong"}, []string{"delete", "app-server:latest"}, `rejected the credentials of user "yocto"`, 1},
		{"password: wrong password (import)", secure, map[string]string{"CONTAINER_REGISTRY_PASSWORD": "wrong"}, []string{"import", "oci:" + good, "badimport"}, `rejected the credentials of user "yocto"`, 1},

		// Repository names with dot segments or empty components: the
		// registry answers 301 to the cleaned path, and a client that
		// followed it turned DELETE or PUT into a GET that "succeeded".
		{"dots: delete with ..", plain, nil, []string{"delete", "yocto/../yocto/container-base:latest"}, `invalid image reference "yocto/../yocto/container-base:latest"`, 2},
		{"dots: delete with //", plain, nil, []string{"delete", "yocto//container-base:latest"}, `invalid image reference "yocto//container-base:latest"`, 2},
		{"dots: delete with /./", plain, nil, []string{"delete", "yocto/./container-base:latest"}, `invalid image reference "yocto/./container-base:latest"`, 2},
		{"dots: delete with a trailing /..", plain, nil, []string{"delete", "yocto/container-base/..:latest"}, `invalid image reference "yocto/container-base/..:latest"`, 2},
		{"dots: delete on the secure registry", secure, nil, []string{"delete", "yocto/../yocto/app-server:latest"}, `invalid image reference "yocto/../yocto/app-server:latest"`, 2},
		{"dots: import to ..", plain, nil, []string{"import", "oci:" + good, "yocto/../yocto/container-base"}, `image name "yocto/../yocto/container-base"`, 2},
		{"dots: import to //", plain, nil, []string{"import", "oci:" + good, "yocto//container-base"}, `image name "yocto//container-base"`, 2},
		{"dots: import to /./", plain, nil, []string{"import", "oci:" + good, "yocto/./container-base"}, `image name "yocto/./container-base"`, 2},
		{"dots: tags of ..", plain, nil, []string{"tags", "yocto/../yocto/container-base"}, `invalid image name "yocto/../yocto/container-base"`, 1},
		{"dots: tags of //", plain, nil, []string{"tags", "yocto//container-base"}, `invalid image name "yocto//container-base"`, 1},
		{"dots: tags of /./", plain, nil, []string{"tags", "yocto/./container-base"}, `invalid image name "yocto/./container-base"`, 1},
		{"dots: push ..", plain, nil, []string{"push", "yocto/../yocto/container-base", "--tag", "bad"}, "yocto/../yocto/container-base is not an OCI image layout", 1},
		{"dots: push //", plain, nil, []string{"push", "yocto//container-base", "--tag", "bad"}, "yocto//container-base is not an OCI image layout", 1},
		{"dots: push /./", plain, nil, []string{"push", "yocto/./container-base", "--tag", "bad"}, "yocto/./container-base is not an OCI image layout", 1},
		{"dots: push into a namespace with ..", plain, map[string]string{"CONTAINER_REGISTRY_NAMESPACE": "yocto/../yocto"}, []string{"push", "container-base", "--tag", "bad"}, `CONTAINER_REGISTRY_NAMESPACE: "yocto/../yocto" is not a valid repository namespace`, 1},
		{"dots: push into a namespace with //", plain, map[string]string{"CONTAINER_REGISTRY_NAMESPACE": "yocto//x"}, []string{"push", "container-base", "--tag", "bad"}, `CONTAINER_REGISTRY_NAMESPACE: "yocto//x" is not a valid repository namespace`, 1},
		{"dots: push into a namespace with /./", plain, map[string]string{"CONTAINER_REGISTRY_NAMESPACE": "yocto/./x"}, []string{"push", "container-base", "--tag", "bad"}, `CONTAINER_REGISTRY_NAMESPACE: "yocto/./x" is not a valid repository namespace`, 1},

		// Passwords with white space at either end: one rule for the
		// environment and the password file, so none is stored verbatim
		// and read back trimmed.
		{"password: leading and trailing spaces at generate", nil, map[string]string{"CONTAINER_REGISTRY_PASSWORD": " pw "}, []string{"generate", "--env-dump", secureDump}, "CONTAINER_REGISTRY_PASSWORD: must not start or end with white space", 1},
		{"password: trailing tab at generate", nil, map[string]string{"CONTAINER_REGISTRY_PASSWORD": "pw\t"}, []string{"generate", "--env-dump", secureDump}, "CONTAINER_REGISTRY_PASSWORD: must not start or end with white space", 1},
		{"password: leading and trailing spaces at start", fresh, map[string]string{"CONTAINER_REGISTRY_PASSWORD": " pw "}, []string{"start"}, "CONTAINER_REGISTRY_PASSWORD: must not start or end with white space", 1},
		{"password: trailing spaces with a running registry (list)", secure, map[string]string{"CONTAINER_REGISTRY_PASSWORD": "pw "}, []string{"list"}, "CONTAINER_REGISTRY_PASSWORD: must not start or end with white space", 1},
		{"password: edited file with trailing spaces (list)", edited, nil, []string{"list"}, "password file " + editedPw + ": must not start or end with white space", 1},
		{"password: edited file with trailing spaces (push)", edited, nil, []string{"push", "app-server", "--strategy", "latest"}, "password file " + editedPw + ": must not start or end with white space", 1},
		{"password: edited file with trailing spaces (delete)", edited, nil, []string{"delete", "app-server:latest"}, "password file " + editedPw + ": must not start or end with white space", 1},
		{"password: edited file with trailing spaces (import)", edited, nil, []string{"import", "oci:" + good, "badimport"}, "password file " + editedPw + ": must not start or end with white space", 1},

		// A storage path that is not UTF-8 would be written into the
		// registry's YAML as U+FFFD and name another directory.
		{"storage: not UTF-8 in the dump", nil, nil, []string{"generate", "--env-dump", nonUTF8Dump}, nonUTF8Err, 1},
		{"storage: not UTF-8 in the environment", nil, map[string]string{"CONTAINER_REGISTRY_STORAGE": nonUTF8}, []string{"generate", "--env-dump", plainDump}, nonUTF8Err, 1},
		{"storage: not UTF-8 on the command line", nil, nil, []string{"generate", "--env-dump", plainDump, "--storage", nonUTF8}, nonUTF8Err, 1},

		// NUL bytes in dump values (a shell would drop them silently).
		{"dump: NUL in a value", nil, nil, []string{"generate", "--env-dump", nulDump}, nulDump + ":4: CONTAINER_REGISTRY_NAMESPACE: the value holds a NUL byte", 1},
		{"dump: NUL in an exported bitbake -e value", nil, nil, []string{"generate", "--env-dump", nulExport}, nulExport + ":5: PV: the value holds a NUL byte", 1},

		// Secrets on standard input (the tests run with stdin empty).
		{"stdin: --password-stdin with nothing on stdin", secure, nil, []string{"push", "app-server", "--tag", "bad", "--creds", "yocto", "--password-stdin"}, "--password-stdin: standard input is empty", 1},
		{"stdin: --password-stdin without a user", secure, nil, []string{"push", "app-server", "--tag", "bad", "--password-stdin"}, "--password-stdin needs the user name: --creds USER --password-stdin", 1},
		{"stdin: --password-stdin and a password in --creds", secure, nil, []string{"push", "app-server", "--tag", "bad", "--creds", "yocto:pw", "--password-stdin"}, "--creds USER:PASSWORD and --password-stdin both give a password", 1},
		{"stdin: --password-stdin and --token-stdin", secure, nil, []string{"push", "app-server", "--tag", "bad", "--creds", "yocto", "--password-stdin", "--token-stdin"}, "--password-stdin and --token-stdin are exclusive", 1},
		{"stdin: --token and --token-stdin", secure, nil, []string{"push", "app-server", "--tag", "bad", "--token", "t", "--token-stdin"}, "--token and --token-stdin are exclusive", 1},
		{"stdin: --src-token-stdin with nothing on stdin", plain, nil, []string{"import", secure.URL + "/yocto/app-server:latest", "badimport", "--src-token-stdin"}, "--src-token-stdin: standard input is empty", 1},
		{"stdin: --src-password-stdin without a user", plain, nil, []string{"import", secure.URL + "/yocto/app-server:latest", "badimport", "--src-password-stdin"}, "--src-password-stdin needs the user name: --src-creds USER --src-password-stdin", 1},
	}
	for _, c := range cases {
		var r Result
		out := func() string { return r.Stdout }
		if c.on == nil {
			r = RunTool(t, c.env, c.args...)
			out = r.Out
		} else {
			r = c.on.RunEnv(c.env, c.args...)
		}
		if r.Code != c.code || !strings.Contains(out(), c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, r.Code, c.code, c.want, r.Out())
		} else {
			t.Logf("%s: exit %d: %s", c.name, r.Code, errorLines(out()))
		}
		for e, snap := range before {
			if now := e.snapshot(t); len(now) != len(snap) {
				t.Errorf("%s: the registry at %s changed: %v -> %v", c.name, e.URL, snap, now)
			} else {
				sameTags(t, c.name, snap, now)
			}
		}
	}
	// Refused configurations wrote nothing.
	for _, p := range append(mustNotExist, fresh.Storage+"/auth", fresh.Storage+"/registry-"+fresh.Port+".pid") {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%q exists after a refused configuration (%v)", p, err)
		}
	}
	if ents, _ := os.ReadDir(nonUTF8Parent); len(ents) != 0 {
		t.Errorf("a refused non-UTF-8 storage path made %q in %s", ents[0].Name(), nonUTF8Parent)
	}
	if r := fresh.Run("status"); r.Code == 0 {
		t.Errorf("a start refused for its password left a registry running: %s", r.Out())
	}
	t.Logf("%d bad inputs", len(cases))
}

// errorLines is the lines of s that start with "Error:", joined by " | ".
func errorLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Error:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, " | ")
}

// indexEntries reads the entries of the index.json of the layout dir.
func indexEntries(t *testing.T, dir string) []v1.Descriptor {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

// writeIndex replaces the index.json of the layout dir.
func writeIndex(t *testing.T, dir string, entries []v1.Descriptor) {
	t.Helper()
	data, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: entries})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// configOf is the config descriptor of the single image of layout dir.
func configOf(t *testing.T, dir string) (string, int64) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(indexEntries(t, dir)[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Config.Digest.String(), m.Config.Size
}
