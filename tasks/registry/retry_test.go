package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// The retry policy: a request without a body answered a transient status
// is asked again (four tries in all) and its last answer returned; a
// request with a body is sent once (its body is read); ggcr's calls
// through Options follow the same policy.
func TestRetryPolicy(t *testing.T) {
	var gets, puts, manifests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case strings.Contains(r.URL.Path, "/manifests/"):
			manifests++
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.Method == http.MethodPut:
			puts++
			w.WriteHeader(http.StatusInternalServerError)
		default:
			gets++
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	tg := newTarget(t, config.Vars{"CONTAINER_REGISTRY_URL": strings.TrimPrefix(srv.URL, "http://"), "CONTAINER_REGISTRY_INSECURE": "1"})
	ctx := context.Background()
	repo, err := tg.Repo("x")
	if err != nil {
		t.Fatal(err)
	}
	client, err := tg.Client(ctx, repo, transport.PushScope, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		var body io.Reader
		if m == http.MethodPut {
			body = bytes.NewReader([]byte("body"))
		}
		req, _ := http.NewRequestWithContext(ctx, m, srv.URL+"/v2/yocto/x/blobs/uploads/", body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s: %s, want the last 500", m, resp.Status)
		}
	}
	if gets != retryBackoff.Steps || puts != 1 {
		t.Errorf("%d GETs and %d PUTs sent, want %d and 1", gets, puts, retryBackoff.Steps)
	}
	_, err = remote.Head(repo.Tag("latest"), tg.Options(ctx)...)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusServiceUnavailable || manifests != retryBackoff.Steps {
		t.Errorf("ggcr HEAD: %v after %d tries, want 503 after %d", err, manifests, retryBackoff.Steps)
	}
}
