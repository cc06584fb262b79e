package push

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// A build document is attached only when it is a regular file inside the
// machine's deploy directory (links inside it work) whose content is what
// its type says; a document name leading to /proc, another directory or
// content of another kind is refused and its bytes never leave the host.
func TestAttachRefusesHostileDocuments(t *testing.T) {
	const marker = "ocireg-test-secret-7d1f"
	t.Setenv("OCIREG_TEST_SECRET", marker)
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte(`{"secret":"`+marker+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b := sample.Build{Spec: sample.Spec{Name: "base", Machine: "m1", Arch: "x86_64", Stamp: "20260102000000"}, Latest: true}
	for _, tc := range []struct {
		name   string
		suffix string
		plant  func(t *testing.T, mdir, doc string) // doc: the document's path
		want   string                               // "" : attached
	}{
		{"link inside the deploy directory", ".spdx.json", func(t *testing.T, mdir, doc string) {
			data, _ := os.ReadFile(doc)
			os.Remove(doc)
			if err := os.WriteFile(filepath.Join(mdir, "elsewhere.spdx.json"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("elsewhere.spdx.json", doc); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"link to /proc/self/environ", ".spdx.json", func(t *testing.T, _, doc string) {
			os.Remove(doc)
			if err := os.Symlink("/proc/self/environ", doc); err != nil {
				t.Fatal(err)
			}
		}, "refused"},
		{"package list linked to /proc/self/environ", ".manifest", func(t *testing.T, _, doc string) {
			os.Remove(doc)
			if err := os.Symlink("/proc/self/environ", doc); err != nil {
				t.Fatal(err)
			}
		}, "refused"},
		{"link out of the deploy directory", ".sbom-cve-check.spdx.json", func(t *testing.T, _, doc string) {
			os.Remove(doc)
			if err := os.Symlink(outside, doc); err != nil {
				t.Fatal(err)
			}
		}, "outside"},
		{"SPDX that is not JSON", ".spdx.json", func(t *testing.T, _, doc string) {
			if err := os.WriteFile(doc, []byte("root:$6$"+marker+":19000:0:99999:7:::\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not JSON"},
		{"package list that is not text", ".manifest", func(t *testing.T, _, doc string) {
			if err := os.WriteFile(doc, []byte("HOME=/root\x00SECRET="+marker+"\x00"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testreg.New(t)
			root := t.TempDir()
			if _, err := sample.WriteTree(root, []sample.Build{b}); err != nil {
				t.Fatal(err)
			}
			mdir := filepath.Join(root, b.Machine)
			tc.plant(t, mdir, filepath.Join(mdir, b.ImageName()+tc.suffix))
			c := testConfig(t, reg.Host, root)
			var out events.Recorder
			sum, err := Push(context.Background(), target(t, c), Options{Strategy: "latest", Events: &out})
			if (err != nil) != (tc.want != "") {
				t.Fatalf("push: %v, want failure %v\n%s", err, tc.want != "", out.String())
			}
			var failed []string
			for _, e := range out.Events() {
				if af, ok := e.(AttachFailed); ok {
					failed = append(failed, af.Err.Error())
				}
			}
			if tc.want == "" {
				if len(failed) > 0 || len(sum.Attached) != 3 {
					t.Fatalf("attached %d, failures %v, want every document attached", len(sum.Attached), failed)
				}
				return
			}
			if len(failed) == 0 || !strings.Contains(failed[0], tc.want) || !strings.Contains(failed[0], b.ImageName()+tc.suffix) {
				t.Errorf("failures %v, want %q naming the document", failed, tc.want)
			}
			for _, a := range sum.Attached {
				if a.File == b.ImageName()+tc.suffix {
					t.Errorf("%s was attached", a.File)
				}
			}
			if strings.Contains(strings.Join(failed, "\n"), marker) {
				t.Errorf("the error quotes the document's content: %v", failed)
			}
			if sum == nil || len(sum.Failed) == 0 {
				t.Errorf("push does not report the image failed: %+v", sum)
			}
		})
	}
}
