package gc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
)

// A signature lives with the manifest it signs: a plain collection and
// --delete-untagged keep the signature of a tagged image; once the image
// is untagged, --delete-untagged removes it, its signature tag and the
// signature manifest, and the signature tag never names a removed
// manifest.
func TestSweepSignatures(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tg := testcfg.Target(t, s.host)
	signer, err := sign.NewSigner(ctx, tg, sign.NewKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := tg.Repo("yocto/base")
	img, _ := random.Image(512, 1)
	gone, _ := random.Image(512, 1)
	imgD := s.push(t, "yocto/base:latest", img)
	goneD := s.push(t, "yocto/base:old", gone)
	sigOf := map[v1.Hash]v1.Hash{}
	for _, d := range []v1.Hash{imgD, goneD} {
		if _, err := signer.Sign(ctx, repo, d, nil); err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(s.ref(t, "yocto/base:"+sign.SigTag(d)))
		if err != nil {
			t.Fatal(err)
		}
		sigOf[d] = desc.Digest
	}
	rep, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Manifests) != 0 || len(rep.Blobs) != 0 {
		t.Fatalf("everything is tagged or signs a tagged manifest; removes %v %v", names(rep.Manifests), names(rep.Blobs))
	}

	if err := remote.Delete(s.ref(t, "yocto/base:old")); err != nil {
		t.Fatal(err)
	}
	rep, err = Sweep(ctx, s.d, Options{RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []v1.Hash{goneD, sigOf[goneD]} {
		if !hasManifest(rep, "yocto/base", d) {
			t.Errorf("%s kept (%v)", d, names(rep.Manifests))
		}
	}
	for _, d := range []v1.Hash{imgD, sigOf[imgD]} {
		if hasManifest(rep, "yocto/base", d) {
			t.Errorf("%s of the tagged image removed", d)
		}
	}
	if !slices.ContainsFunc(rep.Other, func(r Removal) bool { return strings.HasSuffix(r.Path, "/"+sign.SigTag(goneD)) }) {
		t.Errorf("the signature tag of the removed manifest stays: %v", names(rep.Other))
	}
	tags, err := remote.List(s.ref(t, "yocto/base:latest").Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"latest", sign.SigTag(imgD)}; !slices.Equal(tags, want) {
		t.Fatalf("tags after gc: %v, want %v", tags, want)
	}
	// The kept signature still holds (its payload blob is kept).
	if r, err := signer.Sign(ctx, repo, imgD, nil); err != nil || !r.Already {
		t.Fatalf("kept signature: %+v, %v", r, err)
	}
	sigImg, err := remote.Image(s.ref(t, "yocto/base:"+sign.SigTag(imgD)))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := sigImg.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("payload of the kept signature: %v", err)
		}
		rc.Close()
	}
}
