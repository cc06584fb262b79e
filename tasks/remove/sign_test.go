package remove

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// delete removes the signatures of the manifests it prunes, and only
// those: a signed image another tag still uses keeps its signatures.
func TestDeleteRemovesSignatures(t *testing.T) {
	tg := deleteTarget(t)
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := sign.NewSigner(ctx, tg, sign.NewKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	idx, kids := pushIndex(t, tg, "app", "v1", "latest")
	repo, _ := tg.Repo("app")
	all := append([]v1.Hash{idx}, kids...)
	for _, d := range all {
		if _, err := signer.Sign(ctx, repo, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := Tag(ctx, tg, "app:v1"); err != nil || len(res.Signatures) != 0 {
		t.Fatalf("delete of a tag another tag shares: %+v, %v", res, err)
	}
	res, err := Tag(ctx, tg, "app:latest")
	if err != nil || res.PruneErr != nil {
		t.Fatalf("%+v, %v", res, err)
	}
	if len(res.Signatures) != 3 {
		t.Fatalf("removed signatures %v, want 3", res.Signatures)
	}
	tags, err := remote.List(repo, tg.Options(ctx)...)
	if err != nil && len(tags) > 0 {
		t.Fatal(err)
	}
	for _, d := range all {
		if slices.Contains(tags, sign.SigTag(d)) {
			t.Errorf("signature tag of %s stays", d)
		}
	}
}
