package serve

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// With CONTAINER_REGISTRY_GC_INTERVAL the server collects by itself,
// online: an image deleted through the API goes from the storage while the
// registry keeps serving, and the collection is recorded (last-gc.json).
func TestServeCollectsByItself(t *testing.T) {
	c := withDelete(t, nil)
	c.GCInterval = 300 * time.Millisecond // the setting's minimum is a minute
	buf := serveUntilEnd(t, c)

	ref, err := name.ParseReference(c.URL + "/yocto/junk:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(4096, 2)
	if err := remote.Write(ref, img, remote.WithTransport(http.DefaultTransport)); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := remote.Delete(ref.Context().Digest(d.String())); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, _ := runstate.ReadGCRecord(c)
		if rec != nil && rec.Removed && rec.Blobs >= 3 && strings.Contains(buf.String(), "background gc: removed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background collection within 30 s (record %+v)\n%s", rec, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + c.URL + "/v2/yocto/junk/blobs/" + ld.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the deleted image's layer after the collection: %s", resp.Status)
	}
}

// withDelete is a configuration (vars over testcfg's) whose registry
// stores on the filesystem with deletes enabled.
func withDelete(t *testing.T, vars config.Vars) *config.Config {
	t.Helper()
	c := testcfg.WithYAML(t, vars, "")
	yml := "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: " + strconv.Quote(c.DataDir()) + "\n  delete:\n    enabled: true\n"
	if err := os.WriteFile(c.RegistryConfig(), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// serveUntilEnd runs Serve on c until the test ends, when it must return
// without error, and waits until it answers; it returns Serve's log.
func serveUntilEnd(t *testing.T, c *config.Config) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	buf := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, buf) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v\n%s", err, buf)
		}
	})
	waitUp(t, c.URL, done, buf)
	return buf
}

// waitUp waits until the registry at host answers /v2/.
func waitUp(t *testing.T, host string, done chan error, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-done:
			done <- err // for whoever waits for Serve's end
			t.Fatalf("Serve returned: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With a retention policy the server prunes before it collects: of three
// builds of an image, keep 1 leaves the newest (and latest), and the prune
// is recorded (last-prune.json) like a prune command's.
func TestServePrunesByItself(t *testing.T) {
	c := withDelete(t, config.Vars{"CONTAINER_REGISTRY_RETENTION_KEEP": "1"})
	// Pushed before the server runs its first collection (half the
	// interval at least).
	c.GCInterval = 2 * time.Second
	buf := serveUntilEnd(t, c)
	for i, tag := range []string{"20261201-010000", "20261202-010000", "20261203-010000"} {
		ref, _ := name.ParseReference(c.URL + "/yocto/app:" + tag)
		img, _ := random.Image(1024, 1)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			latest, _ := name.ParseReference(c.URL + "/yocto/app:latest")
			if err := remote.Write(latest, img); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, _ := runstate.ReadPruneRecord(c)
		if rec != nil && rec.Removed {
			if rec.Tags != 2 || rec.Error != "" {
				t.Fatalf("prune record %+v", rec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background prune within 30 s (record %+v)\n%s", rec, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
	repo, _ := name.NewRepository(c.URL + "/yocto/app")
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, " ") != "20261203-010000 latest" {
		t.Errorf("tags after the background prune: %v", tags)
	}
}
