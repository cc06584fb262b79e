package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// Registry errors are told apart by their type, status and codes, never
// by their text.
func TestErrorClassification(t *testing.T) {
	blobUnknown := &transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.ManifestBlobUnknownErrorCode}}}
	for err, want := range map[error]bool{
		fmt.Errorf("putting artifact manifest: %w", blobUnknown):                                                                        true,
		&transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.BlobUnknownErrorCode}}}:       true,
		&transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.ManifestInvalidErrorCode}}}: false,
		errors.New(string(transport.ManifestBlobUnknownErrorCode)):                                                                      false, // the text alone
	} {
		if got := isBlobUnknown(err); got != want {
			t.Errorf("isBlobUnknown(%v) = %v, want %v", err, got, want)
		}
	}

	s3, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_BACKEND": "s3://bucket?endpoint=http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	p := &pushRun{c: s3}
	for err, want := range map[error]bool{
		fmt.Errorf("checking blob: %w", &transport.Error{StatusCode: http.StatusInternalServerError}): true,
		&transport.Error{StatusCode: http.StatusUnauthorized}:                                         false,
		errors.New("500 " + http.StatusText(http.StatusInternalServerError)):                          false, // the text alone
	} {
		if got := strings.Contains(p.storageDown(err).Error(), "is the S3 endpoint up?"); got != want {
			t.Errorf("storageDown(%v) names the backend: %v, want %v", err, got, want)
		}
	}
}

// An artifact manifest refused for a blob the registry does not see yet
// (distribution 2.8, racing another pusher) is put again, up to
// maxIndexAttempts times; then the refusal is the error.
func TestArtifactPutAgainOnBlobUnknown(t *testing.T) {
	for _, refusals := range []int{2, maxIndexAttempts} {
		t.Run(fmt.Sprint(refusals), func(t *testing.T) {
			reg := testreg.New(t)
			var mu sync.Mutex
			puts := 0
			app := reg.Server.Config.Handler
			reg.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256:") {
					body, _ := io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(body))
					mu.Lock()
					refuse := bytes.Contains(body, []byte(`"subject"`)) && puts < refusals
					if bytes.Contains(body, []byte(`"subject"`)) {
						puts++
					}
					mu.Unlock()
					if refuse {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusBadRequest)
						fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"blob unknown to registry"}]}`, transport.ManifestBlobUnknownErrorCode)
						return
					}
				}
				app.ServeHTTP(w, r)
			})
			root := t.TempDir()
			sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "docs", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}})
			var out events.Recorder
			attach := true
			_, err := Push(context.Background(), target(t, testConfig(t, reg.Host, root)), Options{Strategy: "latest", Events: &out, Attach: &attach})
			var failed []error
			for _, e := range out.Events() {
				if af, ok := e.(AttachFailed); ok {
					failed = append(failed, af.Err)
				}
			}
			switch {
			case refusals < maxIndexAttempts && (err != nil || len(failed) > 0):
				t.Fatalf("refused %d times: %v %v", refusals, err, failed)
			case refusals < maxIndexAttempts && puts <= refusals:
				t.Fatalf("%d artifact puts after %d refusals: never put again", puts, refusals)
			case refusals == maxIndexAttempts && (len(failed) != 1 || !isBlobUnknown(failed[0]) || puts < maxIndexAttempts):
				t.Fatalf("refused every time: %d puts, attach errors %v, want one blob-unknown error", puts, failed)
			}
		})
	}
}
