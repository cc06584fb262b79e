package ui

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// Each signed tag says who signed it: the registry's key by its
// fingerprint, or another key; signature tags are no rows of their own.
func TestPagesShowSigner(t *testing.T) {
	c := &config.Config{URL: "localhost:5000", TargetURL: "10.0.2.2:5000", UI: true, Storage: t.TempDir()}
	_, srv := testServerFor(t, c)
	ours, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	theirs, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ours.PublicKey)
	if err := os.MkdirAll(c.PKIDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.SigningPubFile(), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tg := testcfg.Target(t, strings.TrimPrefix(srv.URL, "http://"))
	repo, _ := tg.Repo("yocto/app")
	for tag, key := range map[string]*ecdsa.PrivateKey{"ours": ours, "theirs": theirs, "none": nil} {
		d := push(t, srv, "yocto/app:"+tag)
		if key == nil {
			continue
		}
		s, err := sign.NewSigner(ctx, tg, sign.NewKey(key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sign(ctx, repo, v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	fp := sign.Fingerprint(&ours.PublicKey)
	_, body := get(t, srv.URL+"/ui/")
	for _, want := range []string{`title="` + fp + `">signed by ` + fp[:23], `signed by another key`} {
		if !strings.Contains(body, want) {
			t.Errorf("index lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, ".sig") || strings.Count(body, "signed by") != 2 {
		t.Errorf("index lists signature tags or signs the unsigned tag:\n%s", body)
	}
	if _, body := get(t, srv.URL+"/ui/yocto/app:ours"); !strings.Contains(body, `id="signed">signed by `) || !strings.Contains(body, fp) {
		t.Errorf("image page of a signed tag:\n%s", body)
	}
	if _, body := get(t, srv.URL+"/ui/yocto/app:none"); strings.Contains(body, `id="signed"`) {
		t.Errorf("image page of an unsigned tag says signed")
	}
}
