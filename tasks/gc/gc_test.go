package gc

import (
	"context"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
)

// store is distribution's application on in-memory storage with the
// referrers API in front, as serve wires them, and the driver below both.
type store struct {
	d    driver.StorageDriver
	host string
}

func newStore(t *testing.T) *store {
	t.Helper()
	ctx := context.Background()
	app, d := testreg.App(t)
	recs, err := referrers.New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(referrers.NewAPI(recs, app, nil, false, logrus.NewEntry(logrus.StandardLogger())))
	t.Cleanup(srv.Close)
	return &store{d: d, host: strings.TrimPrefix(srv.URL, "http://")}
}

func (s *store) ref(t *testing.T, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s.host+"/"+r, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (s *store) push(t *testing.T, r string, img v1.Image) v1.Hash {
	t.Helper()
	if err := remote.Write(s.ref(t, r), img); err != nil {
		t.Fatalf("pushing %s: %v", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sbomOf is an artifact whose subject is img (an SBOM, say).
func sbomOf(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	d, _ := img.Digest()
	size, _ := img.Size()
	mt, _ := img.MediaType()
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art, err := mutate.AppendLayers(art, static.NewLayer([]byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json"))
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Subject(art, v1.Descriptor{MediaType: mt, Size: size, Digest: d}).(v1.Image)
}

func names(rs []Removal) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func hasManifest(rep *Report, repo string, d v1.Hash) bool {
	return slices.Contains(names(rep.Manifests), repo+"@"+d.Algorithm+":"+d.Hex)
}

// A plain collection keeps everything a tag reaches and an untagged
// manifest; --delete-untagged removes the untagged manifest but keeps the
// referrer of a tagged image; once the tag goes, the referrer goes with
// its subject, and so do its record. A dry run removes nothing and the
// removal carries out exactly the dry run.
func TestSweepReferrers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img, _ := random.Image(1024, 2)
	untagged, _ := random.Image(1024, 1)
	imgD := s.push(t, "yocto/base:latest", img)
	sbomD := s.push(t, "yocto/base@"+mustDigest(t, sbomOf(t, img)).String(), sbomOf(t, img))
	untaggedD := s.push(t, "yocto/base@"+mustDigest(t, untagged).String(), untagged)

	plain, err := Sweep(ctx, s.d, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Manifests) != 0 || len(plain.Blobs) != 0 || plain.Removed {
		t.Fatalf("plain dry run removes %+v", plain)
	}
	all, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if !hasManifest(all, "yocto/base", untaggedD) || hasManifest(all, "yocto/base", sbomD) || hasManifest(all, "yocto/base", imgD) {
		t.Fatalf("--delete-untagged with the subject tagged: %v", names(all.Manifests))
	}
	if len(all.Blobs) != 3 || all.Bytes == 0 {
		t.Fatalf("the untagged manifest, its config and layer: %v (%d bytes)", names(all.Blobs), all.Bytes)
	}

	if err := remote.Delete(s.ref(t, "yocto/base:latest")); err != nil {
		t.Fatal(err)
	}
	dry, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []v1.Hash{imgD, sbomD, untaggedD} {
		if !hasManifest(dry, "yocto/base", d) {
			t.Errorf("subject gone: %s kept (%v)", d, names(dry.Manifests))
		}
	}
	if !slices.ContainsFunc(dry.Other, func(r Removal) bool { return strings.HasPrefix(r.Path, referrers.Root+"/") }) {
		t.Errorf("the referrer's record is not swept: %v", names(dry.Other))
	}
	// Nothing was removed by the dry runs.
	if _, err := remote.Get(s.ref(t, "yocto/base@"+sbomD.String())); err != nil {
		t.Fatalf("dry run removed the referrer: %v", err)
	}
	done, err := CarryOut(ctx, s.d, dry)
	if err != nil {
		t.Fatal(err)
	}
	if !done.Removed || done.Bytes != dry.Bytes || len(done.Blobs) != len(dry.Blobs) {
		t.Fatalf("carried out %+v, dry run %+v", done, dry)
	}
	again, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() {
		t.Fatalf("left after the removal: %+v", again)
	}
}

// What pushes in flight name stays: a manifest in use (a platform
// manifest put by digest, its index not put yet) keeps itself and its
// blobs; a blob in use (probed or uploaded, its manifest not put yet)
// stays; everything else unreferenced goes.
func TestSweepKeepsInUse(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	child, _ := random.Image(1024, 1)
	childD := mustDigest(t, child)
	s.push(t, "yocto/x@"+childD.String(), child)
	other, _ := random.Image(1024, 1)
	otherD := mustDigest(t, other)
	s.push(t, "yocto/x@"+otherD.String(), other)
	rep, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil || len(rep.Blobs) != 6 || len(rep.Manifests) != 2 {
		t.Fatalf("nothing in use: %v, %v, %v", names(rep.Blobs), names(rep.Manifests), err)
	}
	layers, _ := other.Layers()
	layerD, _ := layers[0].Digest()
	inUse := map[digest.Digest]bool{digest.Digest(childD.String()): true, digest.Digest(layerD.String()): true}
	rep, err = Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true, InUse: inUse})
	if err != nil {
		t.Fatal(err)
	}
	if hasManifest(rep, "yocto/x", childD) || !hasManifest(rep, "yocto/x", otherD) || len(rep.Manifests) != 1 {
		t.Fatalf("manifests going with the child in use: %v", names(rep.Manifests))
	}
	for _, b := range rep.Blobs {
		if strings.HasSuffix(b.Name, layerD.Hex) {
			t.Fatalf("the blob in use goes: %v", names(rep.Blobs))
		}
	}
	if len(rep.Blobs) != 2 { // the other image's manifest and config
		t.Fatalf("blobs going: %v", names(rep.Blobs))
	}
}

// An empty storage has nothing to collect and no error.
func TestSweepNothingStored(t *testing.T) {
	s := newStore(t)
	rep, err := Sweep(context.Background(), s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil || !rep.Empty() {
		t.Fatalf("%+v, %v", rep, err)
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Issue 25, item 9: untagged referrers of a subject that was never pushed
// go with --delete-untagged in one pass, counted as manifests, with their
// records: a second dry run finds nothing.
func TestSweepReferrersOfMissingSubject(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img, _ := random.Image(1024, 1) // never pushed
	var refs []v1.Hash
	for i := range 3 {
		art := sbomOf(t, mutate.Annotations(img, map[string]string{"n": strconv.Itoa(i)}).(v1.Image))
		refs = append(refs, s.push(t, "yocto/orphan@"+mustDigest(t, art).String(), art))
	}
	dry, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range refs {
		if !hasManifest(dry, "yocto/orphan", d) {
			t.Errorf("dry run does not count referrer %s: manifests %v", d, names(dry.Manifests))
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(dry.Other), func(r Removal) bool { return !strings.HasPrefix(r.Path, referrers.Root+"/") })); n != len(refs) {
		t.Errorf("dry run sweeps %d records, want %d: %v", n, len(refs), names(dry.Other))
	}
	if _, err := CarryOut(ctx, s.d, dry); err != nil {
		t.Fatal(err)
	}
	for _, d := range refs {
		if _, err := remote.Get(s.ref(t, "yocto/orphan@"+d.String())); err == nil {
			t.Errorf("referrer %s is still stored", d)
		}
	}
	again, err := Sweep(ctx, s.d, Options{DryRun: true, RemoveUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() {
		t.Errorf("a second gc finds more: manifests %v, blobs %v, other %v", names(again.Manifests), names(again.Blobs), names(again.Other))
	}
}
