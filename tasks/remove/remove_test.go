package remove

import (
	"context"
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/query"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

func deleteTarget(t *testing.T) *registry.Target {
	t.Helper()
	return testcfg.Target(t, testreg.New(t).Host)
}

// pushIndex writes an index of two random images under each of tags and
// returns the digests of the index and its children.
func pushIndex(t *testing.T, tg *registry.Target, image string, tags ...string) (v1.Hash, []v1.Hash) {
	t.Helper()
	var adds []mutate.IndexAddendum
	var kids []v1.Hash
	for _, arch := range []string{"amd64", "arm64"} {
		img, _ := random.Image(256, 1)
		d, _ := img.Digest()
		kids = append(kids, d)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	ctx := context.Background()
	for _, tag := range tags {
		ref, _ := tg.Tag(image, tag)
		if err := remote.WriteIndex(ref, idx, tg.Options(ctx)...); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := idx.Digest()
	return d, kids
}

func exists(t *testing.T, tg *registry.Target, image string, d v1.Hash) bool {
	t.Helper()
	repo, _ := tg.Repo(image)
	_, err := remote.Head(repo.Digest(d.String()), tg.Options(context.Background())...)
	return err == nil
}

// Deleting one tag leaves the others; the manifests go only with the last
// tag that reaches them, children included; other images are untouched.
func TestDeletePrunesOnlyUnreferencedManifests(t *testing.T) {
	tg := deleteTarget(t)
	ctx := context.Background()
	idx, kids := pushIndex(t, tg, "app", "v1", "latest")
	other, _ := pushIndex(t, tg, "base", "v1")

	res, err := Tag(ctx, tg, "app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Repo != "yocto/app" || res.Tag != "v1" || res.Digest != idx.String() || len(res.Pruned) != 0 || res.PruneErr != nil {
		t.Fatalf("first delete: %+v", res)
	}
	if !exists(t, tg, "app", idx) {
		t.Fatal("the index went with a tag another tag still uses")
	}
	tags, _ := query.Tags(ctx, tg, "app", false)
	if len(tags.Tags) != 1 || tags.Tags[0] != "latest" {
		t.Fatalf("tags after the first delete: %v", tags.Tags)
	}

	res, err = Tag(ctx, tg, "app:latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 3 || res.Pruned[0] != idx.String() {
		t.Fatalf("last delete pruned %v, want the index first and its 2 children", res.Pruned)
	}
	for _, d := range append([]v1.Hash{idx}, kids...) {
		if exists(t, tg, "app", d) {
			t.Errorf("%s still stored", d)
		}
	}
	if !exists(t, tg, "base", other) {
		t.Error("another image's manifest was touched")
	}
}

func TestDeleteErrors(t *testing.T) {
	tg := deleteTarget(t)
	ctx := context.Background()
	pushIndex(t, tg, "app", "v1")
	var ue *tasks.UsageError
	for _, ref := range []string{"", "app", "app:", "UPPER:v1", "app:bad:tag"} {
		if _, err := Tag(ctx, tg, ref); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", ref, err)
		}
	}
	var nf *TagNotFoundError
	if _, err := Tag(ctx, tg, "app:nosuch"); !errors.As(err, &nf) {
		t.Errorf("unknown tag: %v", err)
	}
}

func TestSplitImageTag(t *testing.T) {
	for _, tc := range []struct {
		in, image, tag string
		ok             bool
	}{
		{"app:v1", "app", "v1", true},
		{"yocto/app:latest", "yocto/app", "latest", true},
		{"localhost:5000/yocto/app", "localhost:5000/yocto/app", "", false},
		{"app", "app", "", false},
		{"app:", "app:", "", false},
	} {
		image, tag, ok := SplitImageTag(tc.in)
		if image != tc.image || tag != tc.tag || ok != tc.ok {
			t.Errorf("SplitImageTag(%q) = %q %q %v", tc.in, image, tag, ok)
		}
	}
}
