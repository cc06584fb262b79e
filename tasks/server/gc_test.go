package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
)

// orphanBlob stores a blob that no repository references under dataDir
// (the filesystem storage's root) and returns its digest and data file.
func orphanBlob(t *testing.T, dataDir string, content string) (string, string) {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	hx := hex.EncodeToString(sum[:])
	file := filepath.Join(dataDir, "docker/registry/v2/blobs/sha256", hx[:2], hx, "data")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "docker/registry/v2/repositories"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hx, file
}

// A registry nothing was pushed to has nothing to collect (and no error).
func TestGCNothingStored(t *testing.T) {
	c := testConfig(t, nil)
	o, rec := testOptions(t)
	for _, yes := range []bool{false, true} {
		res, err := GC(context.Background(), c, GCOptions{Options: o, Yes: yes})
		if err != nil {
			t.Fatalf("yes=%v: %v", yes, err)
		}
		if !res.DryRun.Empty() || res.Removed != nil || res.DryRunOnly() || res.Where != c.DataDir() {
			t.Errorf("yes=%v: result %+v", yes, res)
		}
		wantKinds(t, "gc of an empty registry", rec, "DryRun")
	}
}

// Without Yes and nobody to ask, GC stops after the dry run; a "no" keeps
// everything; Yes removes exactly what the dry run listed.
func TestGCOrphanBlob(t *testing.T) {
	c := testConfig(t, nil)
	o, rec := testOptions(t)
	if _, err := regconfig.EnsureFile(c); err != nil {
		t.Fatal(err)
	}
	digest, file := orphanBlob(t, c.DataDir(), "nobody references me")
	ctx := context.Background()

	res, err := GC(ctx, c, GCOptions{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRunOnly() || len(res.DryRun.Blobs) != 1 || res.DryRun.Blobs[0].Name != digest ||
		res.DryRun.Blobs[0].Bytes != int64(len("nobody references me")) || res.DryRun.Removed {
		t.Fatalf("dry run = %+v (blobs %+v)", res, res.DryRun.Blobs)
	}
	wantKinds(t, "dry run", rec, "DryRun")

	asked := 0
	res, err = GC(ctx, c, GCOptions{Options: o, Confirm: func() bool { asked++; return false }})
	if err != nil || !res.Declined || res.Removed != nil || asked != 1 {
		t.Fatalf("declined: %+v, %v (asked %d)", res, err, asked)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("a declined gc removed the blob: %v", err)
	}
	wantKinds(t, "declined", rec, "DryRun")

	res, err = GC(ctx, c, GCOptions{Options: o, Yes: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed == nil || !res.Removed.Removed || !reflect.DeepEqual(res.Removed.Blobs, res.DryRun.Blobs) ||
		len(res.Held) != 0 {
		t.Fatalf("gc --yes = %+v", res)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the blob is still there (%v)", err)
	}
	wantKinds(t, "gc --yes", rec, "DryRun", "Collected")
}

// A running registry is never stopped: it holds its writes for the sweep
// (in the result and the events, in the order they happen) and goes on
// with the same pid.
func TestGCOnline(t *testing.T) {
	c := testConfig(t, nil)
	o, rec := testOptions(t)
	stopAtEnd(t, c, o)
	ctx := context.Background()
	start, err := Start(ctx, c, o)
	if err != nil {
		t.Fatal(err)
	}
	_, file := orphanBlob(t, c.DataDir(), "garbage while running")
	rec.kinds()

	res, err := GC(ctx, c, GCOptions{Options: o, Yes: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Held) != 1 || res.Removed == nil || len(res.Removed.Blobs) != 1 {
		t.Fatalf("gc = %+v", res)
	}
	wantKinds(t, "gc of a running registry", rec, "WritesHeld", "DryRun", "WritesResumed", "Collected")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the blob is still there (%v)", err)
	}
	status, err := Status(ctx, c, o)
	if err != nil || !status.OK() || status.Pid != start.Pid {
		t.Errorf("status after gc = %+v, %v", status, err)
	}
}
