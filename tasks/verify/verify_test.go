package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// storageWithImages serves a distribution registry on c's data directory,
// pushes two tags of one image and one of another, and stops it.
func storageWithImages(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	logrus.SetOutput(io.Discard)
	rc := &configuration.Configuration{Storage: configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": c.DataDir()}}}
	rc.HTTP.Secret = "test"
	srv := httptest.NewServer(handlers.NewApp(context.Background(), rc))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, ref := range []string{"yocto/app:v1", "yocto/app:latest", "yocto/base:1"} {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(host+"/"+ref, name.Insecure)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// listing is every path under dir with its size, to prove nothing changed.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		out = append(out, fmt.Sprintf("%s %s %d", p, info.Mode(), info.Size()))
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestVerifyCountsAndNeverWrites(t *testing.T) {
	c := storageWithImages(t)
	before := listing(t, c.Storage)
	rep, err := Verify(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Repositories != 2 || rep.Tags != 3 || rep.Manifests != 3 || rep.Blobs != 12 || len(rep.Orphans) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if after := listing(t, c.Storage); after != before {
		t.Fatalf("verify wrote into the storage:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, f := range []string{c.RegistryConfig(), c.SecretFile()} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("verify created %s", f)
		}
	}
}

// layerBlobs lists the data files of the layer blobs in c's storage: the
// gzip streams, not the configs and manifests (JSON).
func layerBlobs(t *testing.T, c *config.Config) []string {
	t.Helper()
	var blobs []string
	filepath.WalkDir(filepath.Join(c.DataDir(), "docker", "registry", "v2", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "data" {
			if data, _ := os.ReadFile(p); len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
				blobs = append(blobs, p)
			}
		}
		return nil
	})
	return blobs
}

func TestVerifyFindsDamage(t *testing.T) {
	c := storageWithImages(t)
	// A layer blob whose content no longer matches its digest, and one
	// that is gone.
	blobs := layerBlobs(t, c)
	if len(blobs) < 2 {
		t.Fatalf("found %d layer blobs", len(blobs))
	}
	if err := os.WriteFile(blobs[0], []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blobs[1]); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Problems) < 2 {
		t.Fatalf("damage not found: %+v", rep)
	}
	text := strings.Join(rep.Problems, "\n")
	for _, want := range []string{"hashes to", "missing"} {
		if !strings.Contains(strings.ToLower(text), want) {
			t.Errorf("problems lack %q:\n%s", want, text)
		}
	}
}

// Verify stops at once when its context ends, also in the middle of
// hashing a large blob (here a layer grown into a 64 GiB sparse file,
// which takes minutes to hash).
func TestVerifyStopsWhenCancelled(t *testing.T) {
	c := storageWithImages(t)
	blobs := layerBlobs(t, c)
	if len(blobs) == 0 {
		t.Fatal("no layer blob")
	}
	if err := os.Truncate(blobs[0], 64<<30); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Verify(ctx, c)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("verify after cancel: %v", err)
		}
		if took := time.Since(cancelled); took > 2*time.Second {
			t.Fatalf("verify took %v to stop", took)
		} else {
			t.Logf("verify stopped %v after cancel: %v", took, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("verify still hashing 30s after cancel")
	}
}
