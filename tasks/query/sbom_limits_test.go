package query

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// hostile is a registry that lies: what it declares and what it sends
// are set per repository.
type hostile struct {
	srv *httptest.Server
	// served counts the body bytes of blob answers.
	served atomic.Int64
	// manifests by "repo:tag" or "repo@digest"; blobs by digest.
	manifests map[string][]byte
	blobs     map[string]func(w http.ResponseWriter)
	// referrers answers GET /v2/<repo>/referrers/<digest> when set.
	referrers func(w http.ResponseWriter, r *http.Request)
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{manifests: map[string][]byte{}, blobs: map[string]func(http.ResponseWriter){}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/v2/":
			return
		case strings.Contains(p, "/manifests/"):
			repo, ref, _ := strings.Cut(strings.TrimPrefix(p, "/v2/"), "/manifests/")
			m, ok := h.manifests[repo+":"+ref]
			if !ok {
				m, ok = h.manifests[repo+"@"+ref]
			}
			if !ok {
				http.NotFound(w, r)
				return
			}
			sum := sha256.Sum256(m)
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
			w.Header().Set("Content-Length", fmt.Sprint(len(m)))
			if r.Method == http.MethodGet {
				w.Write(m)
			}
		case strings.Contains(p, "/blobs/"):
			_, dgst, _ := strings.Cut(p, "/blobs/")
			b, ok := h.blobs[dgst]
			if !ok {
				http.NotFound(w, r)
				return
			}
			b(&counting{ResponseWriter: w, n: &h.served})
		case strings.Contains(p, "/referrers/") && h.referrers != nil:
			h.referrers(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

type counting struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *counting) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (h *hostile) host() string { return strings.TrimPrefix(h.srv.URL, "http://") }

func (h *hostile) target(t *testing.T) *registry.Target {
	t.Helper()
	return testcfg.Target(t, h.host())
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// imageManifest is an image manifest whose config is declared as cfg
// with size.
func imageManifest(cfgDigest string, size int64, annotation string) []byte {
	m := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfgDigest, "size": size},
		"layers": []any{},
	}
	if annotation != "" {
		m["annotations"] = map[string]string{"padding": annotation}
	}
	b, _ := json.Marshal(m)
	return b
}

// A config declared larger than the limit is never fetched (go-containerregistry's
// RawConfigFile reads any declared size); a manifest larger than the limit is
// refused.
func TestSBOMBoundsWhatItParses(t *testing.T) {
	h := newHostile(t)
	huge := "sha256:" + strings.Repeat("ab", 32)
	h.manifests["yocto/huge-config:latest"] = imageManifest(huge, 8<<30, "")
	h.blobs[huge] = func(w http.ResponseWriter) {
		zeros := make([]byte, 1<<20)
		for i := 0; i < 64; i++ { // 64 MiB, then the answer ends
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}
	small := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	h.blobs[digestOf(small)] = func(w http.ResponseWriter) { w.Write(small) }
	h.manifests["yocto/huge-manifest:latest"] = imageManifest(digestOf(small), int64(len(small)), strings.Repeat("x", 6<<20))

	tg := h.target(t)
	_, err := SBOM(context.Background(), tg, SBOMOptions{Image: "huge-config"})
	if err == nil || !strings.Contains(err.Error(), "limit of 8 MiB") {
		t.Errorf("config declared at 8 GiB: %v, want refused by the 8 MiB limit", err)
	}
	if n := h.served.Load(); n != 0 {
		t.Errorf("the tool read %d bytes of a config declared at 8 GiB, want none", n)
	}
	_, err = SBOM(context.Background(), tg, SBOMOptions{Image: "huge-manifest"})
	if err == nil || !strings.Contains(err.Error(), "limit of 4 MiB") {
		t.Errorf("6 MiB manifest: %v, want refused by the 4 MiB limit", err)
	}
}

// sbom follows a referrers Link: rel="next" only on the registry's own
// host.
func TestSBOMReferrersStayOnHost(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		fmt.Fprint(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	}))
	defer other.Close()
	h := newHostile(t)
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	h.blobs[digestOf(cfg)] = func(w http.ResponseWriter) { w.Write(cfg) }
	h.manifests["yocto/linked:latest"] = imageManifest(digestOf(cfg), int64(len(cfg)), "")
	h.referrers = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?last=x>; rel="next"`, other.URL, r.URL.Path))
		fmt.Fprint(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	}
	_, err := SBOM(context.Background(), h.target(t), SBOMOptions{Image: "linked"})
	if err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("%v, want the next link to another host refused", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host was asked %d times", n)
	}
}
