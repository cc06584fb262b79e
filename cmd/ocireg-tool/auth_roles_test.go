package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// fileState is what a test compares to prove a file was not rewritten.
type fileState struct {
	data  []byte
	mtime time.Time
	mode  os.FileMode
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{data: data, mtime: st.ModTime(), mode: st.Mode()}
}

// CONTAINER_REGISTRY_PASSWORD has two parts: it seeds the local
// registry's password at start, and with CONTAINER_REGISTRY_AUTH_MODE=env
// it is CONTAINER_REGISTRY_USER's password for a push. A push to another
// registry with the env-mode credentials, from a storage whose own
// registry is secure with auth, sends them there and never touches the
// local auth/htpasswd or auth/password: byte for byte, mode and mtime.
func TestEnvModePushLeavesLocalAuthAlone(t *testing.T) {
	storage := t.TempDir()
	local, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": storage, "CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_PASSWORD": "local-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generator.EnsureSecrets(local, time.Now(), generator.AtStart); err != nil {
		t.Fatal(err)
	}
	// Back-dated, so that a rewrite within the same second still shows.
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files := []string{local.HtpasswdFile(), local.PasswordFile()}
	before := map[string]fileState{}
	for _, f := range files {
		if err := os.Chtimes(f, past, past); err != nil {
			t.Fatal(err)
		}
		before[f] = stateOf(t, f)
	}

	// Another registry, with its own user, over TLS the storage's CA
	// vouches for (so the push runs in secure mode, auth on).
	other := testreg.New(t, testreg.WithHtpasswd("ci", "remote-secret"), testreg.WithTLS(local.ServerCert(), local.ServerKey()))
	deploy := t.TempDir()
	if _, err := sample.WriteTree(deploy, sample.DefaultBuilds()); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"CONTAINER_REGISTRY_STORAGE=" + storage,
		"CONTAINER_REGISTRY_SECURE=1",
		"CONTAINER_REGISTRY_URL=" + other.Host,
		"CONTAINER_REGISTRY_AUTH_MODE=env",
		"CONTAINER_REGISTRY_USER=ci",
		"CONTAINER_REGISTRY_PASSWORD=remote-secret",
		"CONTAINER_REGISTRY_TAG_STRATEGY=latest",
		"DEPLOY_DIR_IMAGES=" + deploy,
		"TOPDIR=" + t.TempDir(),
	}
	for _, args := range [][]string{{"push"}, {"push"}, {"push", "container-base", "--tag", "v1"}, {"info"}, {"help"}} {
		var out bytes.Buffer
		app := &App{Ctx: context.Background(), Stdin: bytes.NewReader(nil), Stdout: &out, Stderr: &out, Environ: env}
		if code := runApp(app, args); code != exitOK {
			t.Fatalf("%q: exit %d\n%s", args, code, out.String())
		}
	}

	// The images went to the other registry, as its user.
	pem, err := os.ReadFile(local.CACert())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	for _, tag := range []string{"latest", "v1"} {
		ref, err := name.ParseReference(other.Host + "/yocto/container-base:" + tag)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(ref, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: "ci", Password: "remote-secret"})); err != nil {
			t.Errorf("%s on the other registry: %v", ref, err)
		}
	}

	for _, f := range files {
		after := stateOf(t, f)
		if !bytes.Equal(after.data, before[f].data) || !after.mtime.Equal(before[f].mtime) || after.mode != before[f].mode {
			t.Errorf("%s was rewritten by an env-mode push: content changed %v, mtime %s (was %s), mode %v (was %v)", f, !bytes.Equal(after.data, before[f].data), after.mtime, before[f].mtime, after.mode, before[f].mode)
		}
	}
	if pw, err := config.ReadPasswordFile(local.PasswordFile()); err != nil || pw != "local-secret" {
		t.Errorf("the local password changed (%v)", err)
	}
}
