package transfer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

func TestSelectionParse(t *testing.T) {
	for _, c := range []struct {
		sel  Selection
		want string // name:tag,... or the start of the error
	}{
		{Selection{Images: []string{"app"}}, "app:latest"},
		{Selection{Images: []string{"app:v1", "team/web:2.0"}}, "app:v1,team/web:2.0"},
		{Selection{Images: []string{"app"}, AllTags: true}, "app:"},
		{Selection{Images: []string{"app"}, TagPattern: "v1.*"}, "app:"},
		{Selection{}, "give at least one image"},
		{Selection{Images: []string{"app:v1"}, AllTags: true}, `image "app:v1" names a tag`},
		{Selection{Images: []string{"app@sha256:00"}}, "give a tag, not a digest"},
		{Selection{Images: []string{"app:-x"}}, `image "app:-x": invalid tag`},
		{Selection{Images: []string{"app"}, TagPattern: "["}, `--tag-pattern "["`},
	} {
		reqs, err := c.sel.parse("usage")
		var got []string
		for _, r := range reqs {
			got = append(got, r.name+":"+r.tag)
		}
		if err != nil {
			var ue *tasks.UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: error %v, want %q", c.sel, err, c.want)
			}
			continue
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%+v: %v, want %s", c.sel, got, c.want)
		}
	}
}

func TestParseDestination(t *testing.T) {
	for _, c := range []struct{ to, host, ns, err string }{
		{"registry.example.com", "registry.example.com", "", ""},
		{"harbor.lan:8443/prod/", "harbor.lan:8443", "prod", ""},
		{"h:5000/a/b", "h:5000", "a/b", ""},
		{"https://h", "", "", "without a scheme"},
		{"/prod", "", "", "give the destination registry"},
		{"h/Prod", "", "", "namespace"},
	} {
		host, ns, err := ParseDestination(c.to)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.to, err, c.err)
			}
			continue
		}
		if err != nil || host != c.host || ns != c.ns {
			t.Errorf("%q: %q %q %v", c.to, host, ns, err)
		}
	}
}

// source fills reg (no referrers API: ggcr writes the tag schema) with
// yocto/app:v1, a two-platform index, an SBOM-like referrer of each
// platform, and a signature tag on the index. It returns the index
// digest.
func source(t *testing.T, host string) v1.Hash {
	t.Helper()
	repo, err := name.NewRepository(host+"/yocto/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(2048, 2)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if err := remote.WriteIndex(repo.Tag("v1"), idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		doc, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		doc = mutate.MediaType(doc, types.OCIManifestSchema1)
		ref := mutate.Subject(doc, v1.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}).(v1.Image)
		d, _ := ref.Digest()
		if err := remote.Write(repo.Digest(d.String()), ref); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := idx.Digest()
	sig, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("sha256-"+h.Hex+".sig"), sig); err != nil {
		t.Fatal(err)
	}
	return h
}

// Promote between two registries without the referrers API: every
// manifest, the referrers in the tag schema, the signature tag; the
// second run sends nothing.
func TestPromoteTagSchema(t *testing.T) {
	ctx := context.Background()
	src, dst := testreg.New(t), testreg.New(t)
	idx := source(t, src.Host)
	st := testcfg.Target(t, src.Host)
	dt, err := registry.ConnectRemote(ctx, registry.RemoteOptions{Host: dst.Host, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Promote(ctx, st, dt, PromoteOptions{Selection: Selection{Images: []string{"app:v1"}}, Namespace: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	img := res.Images[0]
	// index + 2 platforms + 2 referrers + signature
	if res.ReferrersAPI || img.Repo != "prod/app" || img.Manifests != 6 || img.ManifestsWritten != 6 || img.Referrers != 2 || len(img.Tags) != 2 || res.BytesSent == 0 {
		t.Fatalf("first promote: %+v", res)
	}
	repo, _ := dt.Repo("prod/app")
	d, err := remote.Get(repo.Tag("v1"), dt.Options(ctx)...)
	if err != nil || d.Digest != idx {
		t.Fatalf("v1 at the destination: %v %v", d, err)
	}
	ix, _ := d.ImageIndex()
	m, _ := ix.IndexManifest()
	for _, p := range m.Manifests {
		r, err := dt.Referrers(ctx, repo, p.Digest)
		if err != nil || r.API || len(r.Manifests) != 1 {
			t.Errorf("referrers of %s at the destination: %+v %v", p.Digest, r, err)
		}
	}
	if _, err := remote.Head(repo.Tag("sha256-"+idx.Hex+".sig"), dt.Options(ctx)...); err != nil {
		t.Errorf("signature tag: %v", err)
	}
	res, err = Promote(ctx, st, dt, PromoteOptions{Selection: Selection{Images: []string{"app:v1"}}, Namespace: "prod"})
	if err != nil || res.BytesSent != 0 || res.Images[0].ManifestsWritten != 0 || !res.Images[0].Tags[0].Unchanged {
		t.Fatalf("second promote: %+v %v", res, err)
	}
	if _, err := Promote(ctx, st, dt, PromoteOptions{Selection: Selection{Images: []string{"app"}, AllTags: true}, Rename: []string{"a", "b"}}); err != nil {
		t.Fatalf("rename: %v", err)
	}
	// Another namespace of the source registry: every blob is mounted.
	same, err := registry.ConnectRemote(ctx, registry.RemoteOptions{Host: src.Host, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err = Promote(ctx, st, same, PromoteOptions{Selection: Selection{Images: []string{"app:v1"}}, Namespace: "release"})
	if err != nil || res.Images[0].BlobsMounted != res.Images[0].Blobs || res.Images[0].BlobsUploaded != 0 {
		t.Fatalf("promote within the source registry: %+v %v", res, err)
	}
	_, err = Promote(ctx, st, dt, PromoteOptions{Selection: Selection{Images: []string{"app:nope"}}})
	if !errors.Is(err, registry.ErrImageNotFound) {
		t.Errorf("unknown tag: %v", err)
	}
}

// Export writes the same bytes twice; ImportBundle restores everything;
// a differential bundle is refused by a registry lacking its base and
// names the blobs.
func TestExportImport(t *testing.T) {
	ctx := context.Background()
	src := testreg.New(t)
	source(t, src.Host)
	st := testcfg.Target(t, src.Host)
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one.tar"), filepath.Join(dir, "two.tar")
	for _, f := range []string{one, two} {
		if _, err := Export(ctx, st, ExportOptions{Selection: Selection{Images: []string{"app:v1"}}, Output: f}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(one)
	b, _ := os.ReadFile(two)
	if !bytes.Equal(a, b) {
		t.Fatal("two exports differ")
	}
	if !IsBundle(ctx, one) {
		t.Fatal("IsBundle(export) = false")
	}
	dst := testreg.New(t)
	dt := testcfg.Target(t, dst.Host)
	rec := &events.Recorder{}
	res, err := ImportBundle(ctx, dt, one, rec)
	if err != nil || len(res.Images) != 1 || res.Images[0].Referrers != 2 || len(res.Images[0].Tags) != 2 {
		t.Fatalf("import: %+v %v", res, err)
	}
	evs := rec.Events()
	if last, ok := evs[len(evs)-1].(Progress); !ok || !last.Finished || last.Done != last.Total || last.Total == 0 {
		t.Errorf("import events: %s", rec)
	}

	// A rebuilt app: the differential bundle leaves the unchanged layers
	// out (the manifest and the new config and layer go in).
	l, _ := random.Layer(1024, types.OCILayer)
	repo, _ := st.Repo("app")
	idx, err := remote.Index(repo.Tag("v1"), st.Options(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	first, _ := idx.Image(im.Manifests[0].Digest)
	rebuilt, _ := mutate.AppendLayers(first, l)
	if err := remote.Write(repo.Tag("v2"), rebuilt, st.Options(ctx)...); err != nil {
		t.Fatal(err)
	}
	diff := filepath.Join(dir, "diff.tar")
	er, err := Export(ctx, st, ExportOptions{Selection: Selection{Images: []string{"app:v2"}}, Output: diff, Since: one})
	if err != nil || er.Skipped != 2 || er.Blobs != 3 {
		t.Fatalf("differential export: %+v %v", er, err)
	}
	_, err = ImportBundle(ctx, testcfg.Target(t, testreg.New(t).Host), diff, nil)
	var mb *MissingBlobsError
	if !errors.As(err, &mb) || len(mb.Missing) != 2 || !strings.Contains(err.Error(), "yocto/app sha256:") {
		t.Fatalf("differential import without base: %v", err)
	}
	if _, err := ImportBundle(ctx, dt, diff, nil); err != nil {
		t.Fatalf("differential import on top of the base: %v", err)
	}

	// An output in a missing directory: an error naming it, nothing left.
	_, err = Export(ctx, st, ExportOptions{Selection: Selection{Images: []string{"app:v1"}}, Output: filepath.Join(dir, "no", "x.tar")})
	if err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("missing directory: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
