package push

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// A signing push signs every platform manifest and index in the
// background and reports each once, in order; the SPDX SBOM of every
// platform is attested; a re-push signs and attests nothing. (Run with
// -race: the signatures are made concurrently.)
func TestPushSigns(t *testing.T) {
	reg := testreg.New(t)
	root := t.TempDir()
	sample.WriteTree(root, sample.DefaultBuilds())
	c := testConfig(t, reg.Host, root)
	tg := target(t, c)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := sign.NewSigner(context.Background(), tg, sign.NewKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	var out events.Recorder
	var waits settles
	opts := Options{Strategy: "timestamp latest", Events: &out, Now: time.Date(2026, 1, 12, 14, 30, 22, 0, time.UTC), settle: waits.wait, Signer: signer}
	sum, err := Push(context.Background(), tg, opts)
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	// 2 images × (2 platforms + 1 index shared by both tags); 4 SBOMs.
	if sum.Signed != 6 || sum.SignedAlready != 0 || sum.Attested != 4 || sum.SigningKey != sign.Fingerprint(&priv.PublicKey) {
		t.Fatalf("summary %+v\n%s", sum, out.String())
	}
	signed := 0
	for _, e := range out.Events() {
		if _, ok := e.(Signed); ok {
			signed++
		}
	}
	if signed != 10 {
		t.Fatalf("%d Signed events, want 10\n%s", signed, out.String())
	}
	out.Reset()
	sum, err = Push(context.Background(), tg, opts)
	if err != nil || sum.Signed != 0 || sum.SignedAlready != 6 || sum.Attested != 0 || sum.AttestedAlready != 4 || sum.Uploaded != 0 {
		t.Fatalf("re-push: %+v %v\n%s", sum, err, out.String())
	}
}
