package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ocireg-tool/ocireg-tool/tasks/push"
)

// eventTypes lists the types declared in file: every one is an event.
func eventTypes(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range f.Decls {
		if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.TYPE {
			for _, spec := range g.Specs {
				names = append(names, spec.(*ast.TypeSpec).Name.Name)
			}
		}
	}
	return names
}

// Every push event (every type of tasks/push/events.go) is rendered: a new
// event type without a case in pushRenderer.Emit fails here instead of
// vanishing from the output.
func TestPushRendererCoversEveryEvent(t *testing.T) {
	d := v1.Hash{Algorithm: "sha256", Hex: "4a2f0d1c9b8e7f6a5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e"}
	samples := map[string]any{
		"Note":             push.Note{Text: "no git repository"},
		"BrokenBuild":      push.BrokenBuild{Name: "base", Machine: "qemux86-64", Reason: "no index.json"},
		"Started":          push.Started{URL: "localhost:5000", Namespace: "yocto", Tags: []string{"latest"}},
		"ManifestStarted":  push.ManifestStarted{Image: "base", Platform: "linux/amd64", Machine: "qemux86-64", Dir: "/deploy/base-oci"},
		"Progress":         push.Progress{Sent: 1, Total: 2, Done: true},
		"BlobsDone":        push.BlobsDone{Uploaded: 1, Sent: 10},
		"ManifestDone":     push.ManifestDone{Digest: d},
		"DuplicateBuild":   push.DuplicateBuild{Image: "base", Platform: "linux/amd64", Machine: "m2"},
		"TagWritten":       push.TagWritten{URL: "localhost:5000", Repo: "yocto/base", Tag: "latest", Digest: d},
		"ImageFailed":      push.ImageFailed{Image: "base", Err: errors.New("boom")},
		"Remerged":         push.Remerged{Tag: "latest"},
		"Signed":           push.Signed{Repo: "yocto/base", Digest: d, Tag: "sha256-x.sig", Fingerprint: "sha256:ab"},
		"ArtifactAttached": push.ArtifactAttached{Attached: push.Attached{File: "base.spdx.json", Digest: d}},
		"AttachFailed":     push.AttachFailed{Image: "base", Platform: "linux/amd64", Err: errors.New("boom")},
	}
	for _, name := range eventTypes(t, "../../tasks/push/events.go") {
		e, ok := samples[name]
		if !ok {
			t.Errorf("push event %s has no sample here: add one, and a case to pushRenderer.Emit", name)
			continue
		}
		if got := reflect.TypeOf(e).Name(); got != name {
			t.Fatalf("sample of %s is a %s", name, got)
		}
		var out bytes.Buffer
		(&pushRenderer{w: &out, tty: true}).Emit(e)
		if out.Len() == 0 {
			t.Errorf("push event %s renders nothing: pushRenderer.Emit has no case for it", name)
		}
	}
	// The renderer drops what is not an event of push.
	var out bytes.Buffer
	(&pushRenderer{w: &out}).Emit(fmt.Stringer(nil))
	if out.Len() != 0 {
		t.Errorf("a non-event renders %q", out.String())
	}
}
