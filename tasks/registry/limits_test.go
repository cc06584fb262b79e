package registry

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/tasks/ocilayout"
)

// A manifest or referrers answer that runs past its limit fails the read,
// with or without a Content-Length; other answers pass untouched.
func TestLimitAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := MaxManifestBytes + 1
		if strings.HasSuffix(r.URL.Path, "/fits") {
			n = MaxManifestBytes
		}
		if r.URL.Query().Get("length") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		} else {
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
		io.Copy(w, io.LimitReader(zeros{}, int64(n)))
	}))
	defer srv.Close()
	client := &http.Client{Transport: LimitAnswers(http.DefaultTransport)}
	for _, tc := range []struct {
		path    string
		tooLong bool
	}{
		{"/v2/a/b/manifests/latest", true},
		{"/v2/a/b/manifests/latest?length=1", true},
		{"/v2/a/b/referrers/sha256:00", true},
		{"/v2/a/b/manifests/fits", false},
		{"/v2/a/b/blobs/sha256:00", false},
	} {
		resp, err := client.Get(srv.URL + tc.path)
		var n int64
		if err == nil {
			n, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		var tl *TooLargeError
		if tc.tooLong != errors.As(err, &tl) {
			t.Errorf("%s: read %d bytes, %v; want too large: %v", tc.path, n, err, tc.tooLong)
		}
		if tc.tooLong && n > MaxManifestBytes {
			t.Errorf("%s: %d bytes read past the limit", tc.path, n)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// What the tool accepts from a registry and from an OCI layout agree: an
// image one reads, the other reads too.
func TestLimitsAgreeWithLayouts(t *testing.T) {
	if MaxManifestBytes != ocilayout.MaxDocumentSize || MaxConfigBytes != ocilayout.MaxConfigSize {
		t.Errorf("registry limits %d/%d, layout limits %d/%d", MaxManifestBytes, MaxConfigBytes, ocilayout.MaxDocumentSize, ocilayout.MaxConfigSize)
	}
}
