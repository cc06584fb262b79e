package importer

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

func target(t *testing.T, host string) *registry.Target {
	t.Helper()
	return testcfg.Target(t, host)
}

// multiArchLayout writes an OCI layout holding one index of amd64 and arm64.
func multiArchLayout(t *testing.T) string {
	t.Helper()
	var imgs []v1.Image
	for _, arch := range []string{"x86_64", "aarch64"} {
		img, err := sample.Image(sample.Spec{Name: "tool", Machine: "m", Arch: arch, Stamp: "20260101000000"})
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	dir := filepath.Join(t.TempDir(), "tool-oci")
	if err := sample.WriteNestedLayout(dir, "3.19", imgs...); err != nil {
		t.Fatal(err)
	}
	return dir
}

func platformsAt(t *testing.T, ref string) []string {
	t.Helper()
	r, _ := name.ParseReference(ref, name.Insecure)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	im, _ := idx.IndexManifest()
	var out []string
	for _, m := range im.Manifests {
		out = append(out, m.Platform.String())
	}
	return out
}

func TestImportLayoutEveryPlatform(t *testing.T) {
	reg := testreg.New(t)
	res, err := Import(context.Background(), target(t, reg.Host), Options{Source: "oci:" + multiArchLayout(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repo != "yocto/tool" || res.Tag != "latest" || !strings.Contains(res.Platforms, "linux/amd64") || !strings.Contains(res.Platforms, "linux/arm64") || res.Digest == "" {
		t.Fatalf("result %+v", res)
	}
	if got := platformsAt(t, reg.Host+"/yocto/tool:latest"); len(got) != 2 {
		t.Fatalf("platforms in the registry: %v", got)
	}
}

func TestImportNarrowedAndRenamed(t *testing.T) {
	reg := testreg.New(t)
	res, err := Import(context.Background(), target(t, reg.Host), Options{Source: "oci:" + multiArchLayout(t), Name: "mytool", Tag: "v1", Platforms: []string{"linux/arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Repo != "yocto/mytool" || res.Tag != "v1" || res.Platforms != "linux/arm64" {
		t.Fatalf("result %+v", res)
	}
	if got := platformsAt(t, reg.Host+"/yocto/mytool:v1"); len(got) != 1 || got[0] != "linux/arm64" {
		t.Fatalf("platforms in the registry: %v", got)
	}
}

// Misuse is a usage error; a registry that is down is found before the
// source is even read.
func TestImportErrors(t *testing.T) {
	reg := testreg.New(t)
	layout := multiArchLayout(t)
	var ue *tasks.UsageError
	for _, o := range []Options{
		{},
		{Source: "oci:" + layout, Platforms: []string{"arm64"}},
		{Source: "oci:" + layout, Tag: "bad:tag"},
		{Source: "oci:" + layout, Name: "Bad Name"},
	} {
		if _, err := Import(context.Background(), target(t, reg.Host), o); !errors.As(err, &ue) {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
	}
	if _, err := Import(context.Background(), target(t, reg.Host), Options{Source: "oci:" + layout, Platforms: []string{"linux/s390x"}}); err == nil || !strings.Contains(err.Error(), "no platform matches") {
		t.Errorf("unmatched platform: %v", err)
	}
	// Credentials written into a source reference are refused without
	// being shown.
	for _, src := range []string{"docker://ci:hunter2secret@" + reg.Host + "/x/y:1", "ci:hunter2secret@" + reg.Host + "/x/y:1"} {
		_, err := Import(context.Background(), target(t, reg.Host), Options{Source: src})
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--src-creds") || strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%s: %v, want a usage error pointing at --src-creds, without the secret", src, err)
		}
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	var nr *registry.NotRespondingError
	if _, err := Import(context.Background(), target(t, down), Options{Source: "oci:/no/such/layout"}); !errors.As(err, &nr) {
		t.Errorf("registry down, unreadable source: %v, want not responding", err)
	}
}

// An archive reference splits at the first colon after a file that
// exists, so a ref name may hold colons (a bundle's name:tag).
func TestSplitRef(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "b.tar")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string][2]string{
		file:                        {file, ""},
		file + ":app":               {file, "app"},
		file + ":container-base:v1": {file, "container-base:v1"},
		dir + "/none.tar:x":         {dir + "/none.tar", "x"},
	} {
		if p, ref := splitRef(in); p != want[0] || ref != want[1] {
			t.Errorf("splitRef(%q) = %q, %q; want %q", in, p, ref, want)
		}
	}
}
