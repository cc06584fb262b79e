package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// apiServer is distribution's application on in-memory storage with the
// referrers API in front, as serve wires them.
func apiServer(t *testing.T) (*Store, string) {
	t.Helper()
	store, hosts := replicas(t, 1)
	return store, hosts[0]
}

// replicas is distribution's application on in-memory storage with n
// referrers APIs in front of it, each with locks of its own, as n replicas
// of a shared backend would be.
func replicas(t *testing.T, n int) (*Store, []string) {
	t.Helper()
	ctx := context.Background()
	app, d := testreg.App(t)
	store, err := New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for range n {
		srv := httptest.NewServer(NewAPI(store, app, nil, false, logrus.NewEntry(logrus.StandardLogger())))
		t.Cleanup(srv.Close)
		hosts = append(hosts, strings.TrimPrefix(srv.URL, "http://"))
	}
	return store, hosts
}

// artifactManifest is an artifact manifest with subject and an annotation
// of about size bytes, whose config and layer are the empty blob (pushed
// by pushEmpty).
func artifactManifest(subject digest.Digest, note string, size int) []byte {
	empty := `{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}`
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.test",`+
		`"config":%s,"layers":[%s],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":2},`+
		`"annotations":{"note":%q,"pad":%q}}`, empty, empty, subject, note, strings.Repeat("p", size))
}

func pushEmpty(t *testing.T, host, repo string) {
	t.Helper()
	r, err := name.NewRepository(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(r, static.NewLayer([]byte("{}"), types.MediaType("application/vnd.oci.empty.v1+json"))); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, method, url string, body []byte) int {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestConcurrentPutDelete (issue 25, item 7): PUT and DELETE of the same
// referrer racing each other leave the list equal to what is stored, round
// after round.
func TestConcurrentPutDelete(t *testing.T) {
	t.Run("one process", func(t *testing.T) { putDeleteRace(t, 1) })
	t.Run("two replicas", func(t *testing.T) { putDeleteRace(t, 2) })
}

// putDeleteRace races a DELETE with PUTs of one referrer, the DELETE and
// the PUTs through different replicas when there are two.
func putDeleteRace(t *testing.T, n int) {
	store, hosts := replicas(t, n)
	const repo = "yocto/race"
	pushEmpty(t, hosts[0], repo)
	subject := digest.FromString("subject")
	body := artifactManifest(subject, "race", 0)
	dgst := digest.FromBytes(body)
	url := "http://" + hosts[0] + "/v2/" + repo + "/manifests/" + dgst.String()
	other := "http://" + hosts[n-1] + "/v2/" + repo + "/manifests/" + dgst.String()
	ctx := context.Background()
	named, _ := reference.WithName(repo)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for round := range rounds {
		if code := do(t, "PUT", url, body); code != http.StatusCreated {
			t.Fatalf("PUT: %d", code)
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if i == 0 {
					do(t, "DELETE", other, nil)
				} else {
					do(t, "PUT", url, body)
				}
			})
		}
		wg.Wait()
		r, _ := store.reg.Repository(ctx, named)
		ms, _ := r.Manifests(ctx)
		stored, err := ms.Exists(ctx, dgst)
		if err != nil {
			t.Fatal(err)
		}
		list, _, err := store.List(ctx, repo, subject, Query{N: 10})
		if err != nil {
			t.Fatal(err)
		}
		if listed := len(list) == 1; listed != stored {
			t.Fatalf("round %d: stored %v, listed %v", round, stored, listed)
		}
	}
}

// TestPagesBySize (issue 25, item 10): two referrers with 3 MB annotations
// come on two pages, each under MaxPageBytes of JSON, linked by
// rel="next"; a page holds at least one descriptor.
func TestPagesBySize(t *testing.T) {
	_, host := apiServer(t)
	const repo = "yocto/big"
	pushEmpty(t, host, repo)
	subject := digest.FromString("subject")
	var want []digest.Digest
	for _, note := range []string{"a", "b"} {
		body := artifactManifest(subject, note, 3<<20)
		d := digest.FromBytes(body)
		if code := do(t, "PUT", "http://"+host+"/v2/"+repo+"/manifests/"+d.String(), body); code != http.StatusCreated {
			t.Fatalf("PUT: %d", code)
		}
		want = append(want, d)
	}
	slices.Sort(want)
	var got []digest.Digest
	next := "/v2/" + repo + "/referrers/" + subject.String()
	for pages := 0; next != ""; pages++ {
		if pages > 2 {
			t.Fatal("more pages than referrers")
		}
		resp, err := http.Get("http://" + host + next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) > MaxPageBytes {
			t.Errorf("page %d: %d bytes of JSON, over %d", pages, len(body), MaxPageBytes)
		}
		var idx v1.Index
		if err := json.Unmarshal(body, &idx); err != nil || len(idx.Manifests) == 0 {
			t.Fatalf("page %d: %d descriptors, %v", pages, len(idx.Manifests), err)
		}
		for _, m := range idx.Manifests {
			got = append(got, m.Digest)
		}
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
}
