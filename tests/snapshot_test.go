package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// remoteOpts reach the registry of e through the registry API: its CA and
// generated password when it has them.
func (e *Env) remoteOpts(t *testing.T) []remote.Option {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pem, err := os.ReadFile(filepath.Join(e.Storage, "pki", "ca.crt")); err == nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: newPool(t, pem)}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr)}
	if pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password")); err == nil {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: "yocto", Password: strings.TrimSpace(string(pw))}))
	}
	return opts
}

// snapshot reads every repository:tag of the running registry of e and
// the digest it names, through the registry API.
func (e *Env) snapshot(t *testing.T) map[string]string {
	t.Helper()
	opts := e.remoteOpts(t)
	reg, err := name.NewRegistry(e.URL, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(context.Background(), reg, opts...)
	if err != nil {
		t.Fatalf("catalog of %s: %v", e.URL, err)
	}
	out := map[string]string{}
	for _, r := range repos {
		repo := reg.Repo(r)
		tags, err := remote.List(repo, opts...)
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			continue // blobs or untagged manifests only
		}
		if err != nil {
			t.Fatalf("tags of %s: %v", repo, err)
		}
		for _, tag := range tags {
			d, err := remote.Head(repo.Tag(tag), opts...)
			if err != nil {
				t.Fatalf("%s:%s: %v", repo, tag, err)
			}
			out[r+":"+tag] = d.Digest.String()
		}
	}
	return out
}

// platforms reads the index at ref (repo:tag) of e: platform -> digest.
func (e *Env) platforms(t *testing.T, ref string) map[string]string {
	t.Helper()
	r, err := name.ParseReference(e.URL+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r, e.remoteOpts(t)...)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &im); err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	out := map[string]string{}
	for _, m := range im.Manifests {
		if m.Platform != nil {
			out[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest.String()
		}
	}
	return out
}
