package sign

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

func newKey(t *testing.T) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewKey(priv)
}

// pushRandom pushes a random image to repo by digest and returns it.
func pushRandom(t *testing.T, tg *registry.Target, repo name.Repository) v1.Hash {
	t.Helper()
	img, _ := random.Image(128, 1)
	d, _ := img.Digest()
	if err := remote.Write(repo.Digest(d.String()), img, tg.Options(context.Background())...); err != nil {
		t.Fatal(err)
	}
	return d
}

func sigManifest(t *testing.T, tg *registry.Target, repo name.Repository, d v1.Hash) (*v1.Manifest, v1.Hash) {
	t.Helper()
	desc, err := remote.Get(repo.Tag(SigTag(d)), tg.Options(context.Background())...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytesReader(desc.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	return m, desc.Digest
}

func TestSignOnceAndMoreKeys(t *testing.T) {
	ctx := context.Background()
	tg := testcfg.Target(t, testreg.New(t).Host)
	repo, _ := tg.Repo("app")
	d := pushRandom(t, tg, repo)
	k1 := newKey(t)
	s1, err := NewSigner(ctx, tg, k1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s1.Sign(ctx, repo, d, nil)
	if err != nil || r.Already || r.Tag != "sha256-"+d.Hex+".sig" {
		t.Fatalf("first sign: %+v, %v", r, err)
	}
	m, first := sigManifest(t, tg, repo, d)
	if len(m.Layers) != 1 || m.Layers[0].MediaType != PayloadType || m.Layers[0].Annotations[SignatureAnnotation] == "" {
		t.Fatalf("signature manifest %+v", m)
	}
	// The payload names the repository as targets pull it.
	l, err := remote.Layer(repo.Digest(m.Layers[0].Digest.String()), tg.Options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := l.Compressed()
	var p Payload
	if err := json.NewDecoder(rc).Decode(&p); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if p.Critical.Identity.DockerReference != tg.Config.TargetURL+"/yocto/app" || p.Critical.Image.DockerManifestDigest != d.String() || p.Critical.Type != payloadKind {
		t.Fatalf("payload %+v", p)
	}

	// Signing again writes nothing.
	r, err = s1.Sign(ctx, repo, d, nil)
	if err != nil || !r.Already {
		t.Fatalf("second sign: %+v, %v", r, err)
	}
	if _, again := sigManifest(t, tg, repo, d); again != first {
		t.Fatalf("signature tag changed on a re-sign: %s -> %s", first, again)
	}

	// A second key adds its layer beside the first.
	s2, _ := NewSigner(ctx, tg, newKey(t))
	if r, err := s2.Sign(ctx, repo, d, nil); err != nil || r.Already {
		t.Fatalf("second key: %+v, %v", r, err)
	}
	m, _ = sigManifest(t, tg, repo, d)
	if len(m.Layers) != 2 {
		t.Fatalf("want 2 signature layers, got %d", len(m.Layers))
	}
	if r, err := s1.Sign(ctx, repo, d, nil); err != nil || !r.Already {
		t.Fatalf("first key after the second: %+v, %v", r, err)
	}
}

func TestIsSigTag(t *testing.T) {
	d := v1.Hash{Algorithm: "sha256", Hex: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if got, ok := IsSigTag(SigTag(d)); !ok || got != d {
		t.Fatalf("IsSigTag(SigTag) = %v, %v", got, ok)
	}
	for _, bad := range []string{"latest", "sha256-abc.sig", "sha256-" + d.Hex, "sha512-" + d.Hex + ".sig", "sha256-" + d.Hex[:63] + "G.sig"} {
		if _, ok := IsSigTag(bad); ok {
			t.Errorf("IsSigTag(%q) = true", bad)
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
