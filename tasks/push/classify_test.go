package push

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/config"
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
