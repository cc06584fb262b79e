package tests

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cluster is SeaweedFS's S3 (credentials required), optionally redis, and
// n replicas, each a helper of its own (own storage directory and port)
// on one bucket prefix, started.
type cluster struct {
	s3       *S3Server
	redis    string
	replicas []*Env
}

func newCluster(t *testing.T, n int, withRedis bool, vars map[string]string) *cluster {
	t.Helper()
	c := &cluster{s3: StartS3(t)}
	if withRedis {
		c.redis = StartRedis(t)
	}
	creds := c.s3.CredsFile(t)
	for i := 0; i < n; i++ {
		v := map[string]string{"CONTAINER_REGISTRY_BACKEND": c.s3.Backend("farm"), "CONTAINER_REGISTRY_REDIS": c.redis}
		for k, val := range vars {
			v[k] = val
		}
		e := NewEnv(t, v)
		e.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"] = creds
		r := e.mustRun(t, 0, "start")
		wantOut(t, r, fmt.Sprintf("replica %d start", i), "Registry started")
		c.replicas = append(c.replicas, e)
	}
	return c
}

// The registry data lives in the bucket, nothing under data/; status
// shows the backend and the other replica; an upload begun on replica A
// is finished on replica B (the upload secret is shared through the
// backend); the blob is then served by both.
func TestS3ReplicasShareStorageAndUploads(t *testing.T) {
	c := newCluster(t, 2, true, nil)
	a, b := c.replicas[0], c.replicas[1]
	r := a.mustRun(t, 0, "status")
	wantOut(t, r, "status of A", "Backend: "+c.s3.Backend("farm"), "Peers:   "+b.URL, "healthy")

	body := []byte("an upload that crosses replicas " + randHex(t, 8))
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(body))
	resp, err := http.Post("http://"+a.URL+"/v2/yocto/cross/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("starting an upload on A: %d, Location %q", resp.StatusCode, loc)
	}
	loc = strings.Replace(loc, a.URL, b.URL, 1)
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + b.URL + loc
	}
	req, _ := http.NewRequest(http.MethodPut, loc+"&digest="+dgst, bytes.NewReader(body))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finishing A's upload on B: %d", resp.StatusCode)
	}
	for _, e := range c.replicas {
		resp, err := http.Head("http://" + e.URL + "/v2/yocto/cross/blobs/" + dgst)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("blob on %s: %d", e.URL, resp.StatusCode)
		}
	}
	if keys := c.s3.Keys(t, "farm/docker/registry/v2/blobs/"); len(keys) == 0 {
		t.Error("no blob in the bucket")
	}
	if entries, _ := os.ReadDir(filepath.Join(a.Storage, "data")); len(entries) != 0 {
		t.Errorf("data/ of replica A holds %d entries; the registry data belongs in the bucket", len(entries))
	}

	// Another prefix on the same redis database would be answered from
	// this one's blob cache: refused; with a database of its own it runs.
	other := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_BACKEND": c.s3.Backend("elsewhere"), "CONTAINER_REGISTRY_REDIS": c.redis})
	other.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"] = a.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"]
	r = other.Run("start")
	if r.Code == 0 || !strings.Contains(r.Out(), "caches the blobs of another storage") {
		t.Fatalf("a second backend on the same redis database: exit %d\n%s", r.Code, r.Out())
	}
	other.Extra["CONTAINER_REGISTRY_REDIS"] = c.redis + "/1"
	other.mustRun(t, 0, "start")
}

// Two machines' builds of one image pushed at the same time through two
// replicas of one bucket to the same tags, 20 rounds: every index holds
// both architectures, read through either replica (the redis push lock).
func TestS3ConcurrentArchPushesTwoReplicas(t *testing.T) {
	const rounds = 20
	x86root := filepath.Join(t.TempDir(), "x86")
	armroot := filepath.Join(t.TempDir(), "arm")
	x86 := bigBuild(t, x86root, "app", "qemux86-64", "x86_64", "20260401000000", 32<<10, 2)
	arm := bigBuild(t, armroot, "app", "qemuarm64", "aarch64", "20260401000000", 32<<10, 2)
	c := newCluster(t, 2, true, nil)
	a, b := c.replicas[0], c.replicas[1]
	want := map[string]string{"linux/amd64": layoutManifest(t, x86), "linux/arm64": layoutManifest(t, arm)}
	for i := 0; i < rounds; i++ {
		tag := fmt.Sprintf("c%d", i)
		pa := a.Start(t, map[string]string{"DEPLOY_DIR_IMAGES": x86root}, "push", "app", "--tag", tag, "--tag", "latest")
		pb := b.Start(t, map[string]string{"DEPLOY_DIR_IMAGES": armroot}, "push", "app", "--tag", tag, "--tag", "latest")
		for _, p := range []*bg{pa, pb} {
			if code, out := p.Wait(t); code != 0 {
				t.Fatalf("round %d: push exit %d\n%s", i, code, out)
			}
		}
		for _, e := range c.replicas {
			for _, tg := range []string{tag, "latest"} {
				plats := e.platforms(t, "yocto/app:"+tg)
				if len(plats) != 2 || plats["linux/amd64"] != want["linux/amd64"] || plats["linux/arm64"] != want["linux/arm64"] {
					t.Fatalf("round %d: %s via %s holds %v, want %v", i, tg, e.URL, plats, want)
				}
			}
		}
	}
	t.Logf("%d rounds through two replicas, both platforms every time", rounds)
	for _, e := range c.replicas {
		if r := e.Run("verify"); r.Code != 0 {
			t.Fatalf("verify via %s: %s", e.URL, r.Out())
		}
	}
	if err := skopeoPull(t, b, "yocto/app:latest"); err != nil {
		t.Errorf("pull via B: %v", err)
	}
}

// An image pushed through replica B while gc --yes runs on replica A is
// never lost: (1) the push paused after its manifests, before its index,
// while the whole gc runs (its platform manifests are in use on B); (2)
// gc started while B's push uploads. Both exit 0, pulls through both
// replicas never fail meanwhile, verify is clean, the image pulls through
// both replicas and the garbage is gone.
func TestS3GCDuringPushOnOtherReplica(t *testing.T) {
	c := newCluster(t, 2, true, nil)
	a, b := c.replicas[0], c.replicas[1]
	srvPush(t, a, "yocto/keep:v1", srvRandomImage(t, 64<<10, 3))
	for round, paused := range []bool{true, false} {
		junk := srvRandomImage(t, 64<<10, 2)
		junkD := srvPush(t, a, "yocto/junk:v1", junk)
		a.mustRun(t, 0, "delete", "junk:v1")
		pullsA, pullsB := startPulls(t, a, []string{"yocto/keep:v1"}, 1), startPulls(t, b, []string{"yocto/keep:v1"}, 1)
		root := filepath.Join(t.TempDir(), "deploy")
		img := fmt.Sprintf("big%d", round)
		bigBuild(t, root, img, "qemux86-64", "x86_64", "20260601000000", 3<<20, 4)
		var env map[string]string
		var marker string
		if paused {
			env, marker = pauseAt(t, "push-before-index")
		} else {
			env = map[string]string{}
		}
		env["DEPLOY_DIR_IMAGES"] = root
		push := b.Start(t, env, "push", img, "--tag", "v1")
		if paused {
			poll(t, "push to reach its index", 120*time.Second, push, func() bool { return exists(marker) })
		} else {
			time.Sleep(300 * time.Millisecond)
		}
		gc := a.Start(t, nil, "gc", "--yes")
		if paused {
			code, out := gc.Wait(t)
			if code != 0 {
				t.Fatalf("round %d: gc exit %d\n%s", round, code, out)
			}
			if !strings.Contains(out, "Pushes wait while the collection sweeps (pulls go on): ") {
				t.Errorf("round %d: gc did not hold both replicas:\n%s", round, out)
			}
			os.Remove(marker)
		}
		pcode, pout := push.Wait(t)
		gcode, gout := gc.Wait(t)
		if pcode != 0 || gcode != 0 {
			t.Fatalf("round %d: push exit %d, gc exit %d\npush:\n%s\ngc:\n%s", round, pcode, gcode, pout, gout)
		}
		t.Logf("round %d (push paused before its index: %v): gc said:\n%s", round, paused, gout)
		pullsA.end(t, fmt.Sprintf("round %d: pulls through %s", round, a.URL))
		pullsB.end(t, fmt.Sprintf("round %d: pulls through %s", round, b.URL))
		for _, k := range c.s3.Keys(t, "farm/docker/registry/v2/blobs/") {
			if strings.Contains(k, junkD.Hex) {
				t.Errorf("round %d: the junk manifest is still in the bucket: %s", round, k)
			}
		}
		for _, e := range c.replicas {
			if r := e.Run("verify"); r.Code != 0 {
				t.Fatalf("round %d: verify via %s: %s", round, e.URL, r.Out())
			}
			if err := skopeoPull(t, e, "yocto/"+img+":v1"); err != nil {
				t.Errorf("round %d: %s:v1 does not pull via %s: %v", round, img, e.URL, err)
			}
		}
	}

	// gc SIGKILLed on A while both replicas hold: pulls through both go
	// on, a push through B waits for the dead gc's hold to lapse and
	// completes, the next gc collects, nothing live is lost.
	pullsA, pullsB := startPulls(t, a, []string{"yocto/keep:v1"}, 1), startPulls(t, b, []string{"yocto/keep:v1"}, 1)
	env, marker := pauseAt(t, "gc-held")
	gc := a.Start(t, env, "gc", "--yes")
	poll(t, "gc to hold both replicas", 120*time.Second, gc, func() bool { return exists(marker) })
	pushed := make(chan error, 1)
	late := srvRandomImage(t, 64<<10, 2)
	go func() {
		r, _ := name.ParseReference(b.URL+"/yocto/late:v1", name.Insecure)
		pushed <- remote.Write(r, late)
	}()
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(markerPid(t, marker), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code, out := gc.Wait(t); code == 0 {
		t.Fatalf("killed gc exited 0:\n%s", out)
	}
	select {
	case err := <-pushed:
		if err != nil {
			t.Fatalf("the push waiting on the killed gc: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the push waiting on the killed gc never completed")
	}
	a.mustRun(t, 0, "gc", "--yes")
	pullsA.end(t, "gc killed: pulls through "+a.URL)
	pullsB.end(t, "gc killed: pulls through "+b.URL)
	for _, e := range c.replicas {
		if r := e.Run("verify"); r.Code != 0 {
			t.Fatalf("after the killed gc: verify via %s: %s", e.URL, r.Out())
		}
		if err := pullOnce(e, "yocto/late:v1"); err != nil {
			t.Errorf("the push that waited on the killed gc does not pull via %s: %v", e.URL, err)
		}
	}
}

// A replica SIGKILLed in the middle of a push: the push fails clearly,
// verify (through the other replica and offline) is clean, and the same
// push through the other replica completes.
func TestS3KillReplicaMidPush(t *testing.T) {
	c := newCluster(t, 2, true, nil)
	a, b := c.replicas[0], c.replicas[1]
	root := filepath.Join(t.TempDir(), "deploy")
	bigBuild(t, root, "big", "qemux86-64", "x86_64", "20260701000000", 6<<20, 3)
	env := map[string]string{"DEPLOY_DIR_IMAGES": root}
	push := a.Start(t, env, "push", "big", "--tag", "v1")
	poll(t, "an upload in flight", 60*time.Second, push, func() bool {
		return len(c.s3.Keys(t, "farm/docker/registry/v2/repositories/yocto/big/_uploads/")) > 0
	})
	a.killServer(t)
	code, out := push.Wait(t)
	if code == 0 {
		t.Fatalf("push through a killed replica exited 0:\n%s", out)
	}
	if r := b.Run("verify"); r.Code != 0 {
		t.Fatalf("verify after the kill: %s", r.Out())
	}
	r := b.RunEnv(env, "push", "big", "--tag", "v1")
	if r.Code != 0 {
		t.Fatalf("push through B after A was killed: %s", r.Out())
	}
	b.mustRun(t, 0, "verify")
	if err := skopeoPull(t, b, "yocto/big:v1"); err != nil {
		t.Errorf("pull via B: %v", err)
	}
	r = a.mustRun(t, 0, "start")
	wantOut(t, r, "restart of A", "Registry started")
	if err := skopeoPull(t, a, "yocto/big:v1"); err != nil {
		t.Errorf("pull via A after its restart: %v", err)
	}
}

// With the S3 endpoint down, start, push and verify fail with an error
// that names the backend; nothing is lost: once it is back, what was
// pushed before pulls and verify is clean.
func TestS3EndpointDown(t *testing.T) {
	c := newCluster(t, 1, false, map[string]string{"DEPLOY_DIR_IMAGES": deployTree(t)})
	e := c.replicas[0]
	e.mustRun(t, 0, "push", "--strategy", "latest")
	before := e.snapshot(t)
	c.s3.Stop()
	r := e.Run("push", "container-base", "--tag", "during-outage")
	if r.Code == 0 {
		t.Fatalf("push with the S3 endpoint down exited 0:\n%s", r.Out())
	}
	t.Logf("push with S3 down:\n%s", r.Out())
	wantOut(t, r, "push with S3 down", "container-base", "could not read its storage s3://registry/farm", "is the S3 endpoint up?")
	e.mustRun(t, 0, "stop")
	r = e.Run("start")
	if r.Code == 0 {
		t.Fatalf("start with the S3 endpoint down exited 0:\n%s", r.Out())
	}
	wantOut(t, r, "start with S3 down", "/ocireg-tool/http.secret", "127.0.0.1")
	t.Logf("start with S3 down:\n%s", r.Out())
	r = e.Run("verify")
	if r.Code == 0 || !strings.Contains(r.Out(), "127.0.0.1") {
		t.Fatalf("verify with S3 down: exit %d\n%s", r.Code, r.Out())
	}
	c.s3.Start()
	e.mustRun(t, 0, "start")
	sameTags(t, "after the outage", before, e.snapshot(t))
	e.mustRun(t, 0, "verify")
	pullAll(t, e, before)
}

// gc on a shared backend removes what no tag reaches (grace shortened by
// the test hook), through replica A while B serves: the deleted image's
// blobs are gone from the bucket and B no longer answers for them (the
// redis blob descriptors were purged), everything kept pulls through B and
// verify is clean.
func TestS3GCRemovesGarbage(t *testing.T) {
	c := newCluster(t, 2, true, map[string]string{"DEPLOY_DIR_IMAGES": deployTree(t)})
	a, b := c.replicas[0], c.replicas[1]
	a.mustRun(t, 0, "push", "--strategy", "latest")
	keep := a.snapshot(t)
	img := srvRandomImage(t, 64<<10, 3)
	srvPush(t, b, "yocto/junk:v1", img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	junk, _ := layers[0].Digest()
	// GET, not HEAD: a HEAD is a push probe, whose digest the replica
	// keeps in use for a while (gc would keep the blob).
	head := func(e *Env) int {
		resp, err := http.Get("http://" + e.URL + "/v2/yocto/junk/blobs/" + junk.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := head(b); code != http.StatusOK {
		t.Fatalf("junk layer before gc: %d", code)
	}
	b.mustRun(t, 0, "delete", "junk:v1")
	r := a.Run("gc", "--yes")
	if r.Code != 0 {
		t.Fatalf("gc: %s", r.Out())
	}
	wantOut(t, r, "gc", "Pushes wait while the collection sweeps (pulls go on): ", "Garbage collection complete: removed", "Pushes resume")
	t.Logf("gc:\n%s", r.Stdout)
	for _, k := range c.s3.Keys(t, "farm/docker/registry/v2/blobs/") {
		if strings.Contains(k, junk.Hex) {
			t.Errorf("the junk layer is still in the bucket: %s", k)
		}
	}
	if code := head(b); code != http.StatusNotFound {
		t.Errorf("B still answers %d for the removed junk layer (stale redis cache)", code)
	}
	b.mustRun(t, 0, "verify")
	sameTags(t, "after gc", keep, b.snapshot(t))
	pullAll(t, b, keep)
}

// list, tags, import, delete and verify behave on S3 as on the
// filesystem, through either replica.
func TestS3EverydayCommands(t *testing.T) {
	c := newCluster(t, 2, true, map[string]string{"DEPLOY_DIR_IMAGES": deployTree(t)})
	a, b := c.replicas[0], c.replicas[1]
	a.mustRun(t, 0, "push", "--tag", "v1", "--tag", "latest", "container-base")
	wantOut(t, b.mustRun(t, 0, "list"), "list via B", "yocto/container-base: latest v1")
	wantOut(t, b.mustRun(t, 0, "tags", "container-base"), "tags via B", "latest", "v1")
	dir, _ := goodLayout(t)
	b.mustRun(t, 0, "import", "oci:"+dir, "thirdparty")
	if got, want := a.snapshot(t)["yocto/thirdparty:latest"], layoutManifest(t, dir); got != want {
		t.Fatalf("yocto/thirdparty:latest via A is %s, want %s", got, want)
	}
	a.mustRun(t, 0, "delete", "container-base:v1")
	deleted := time.Now()
	for {
		r := b.mustRun(t, 0, "tags", "container-base")
		if !strings.Contains(r.Stdout, "v1") {
			break
		}
		if time.Since(deleted) > 60*time.Second {
			t.Fatalf("v1 still listed via B 60s after its delete via A:\n%s", r.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("tag gone from the listing after %s", time.Since(deleted).Round(time.Millisecond))
	b.mustRun(t, 1, "delete", "container-base:v1")
	wantOut(t, a.mustRun(t, 0, "verify"), "verify", "OK: no problems found")
	if err := skopeoPull(t, b, "yocto/container-base:latest"); err != nil {
		t.Errorf("pull via B: %v", err)
	}
}

// An https endpoint whose certificate a private CA signed: with ca= the
// registry runs on it (push, verify); without, start says why not.
func TestS3EndpointPrivateCA(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := privateCA(t, dir)
	httpsPort := FreePort(t)
	s3 := StartS3(t, "-s3.port.https="+httpsPort, "-s3.cert.file="+certFile, "-s3.key.file="+keyFile)
	waitPort(t, "127.0.0.1:"+httpsPort, 30*time.Second)
	backend := func(q string) string {
		return "s3://" + s3.Bucket + "/tls?endpoint=https://127.0.0.1:" + httpsPort + "&region=us-east-1" + q
	}
	without := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_BACKEND": backend("")})
	without.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"] = s3.CredsFile(t)
	r := without.Run("start")
	if r.Code == 0 || !strings.Contains(r.Out(), "certificate") {
		t.Fatalf("start against the private CA without ca=: exit %d\n%s", r.Code, r.Out())
	}
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_BACKEND": backend("&ca=" + caPEM), "DEPLOY_DIR_IMAGES": deployTree(t)})
	e.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"] = s3.CredsFile(t)
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")
	e.mustRun(t, 0, "verify")
	if keys := s3.Keys(t, "tls/docker/registry/v2/blobs/"); len(keys) == 0 {
		t.Error("nothing stored through the https endpoint")
	}
}

// privateCA writes a CA certificate and a server certificate and key for
// 127.0.0.1 signed by it; it returns their paths.
func privateCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test S3 CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "s3.crt"), filepath.Join(dir, "s3.key")
	for f, b := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}
