package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// A catalog of 2500 repositories served 100 per page lists completely.
func TestRepositoriesPagination(t *testing.T) {
	const total, per = 2500, 100
	pages := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		if r.URL.Path != "/v2/_catalog" {
			http.NotFound(w, r)
			return
		}
		pages++
		start := 0
		if last := r.URL.Query().Get("last"); last != "" {
			n, _ := strconv.Atoi(strings.TrimPrefix(last, "repo"))
			start = n + 1
		}
		var names []string
		for i := start; i < total && i < start+per; i++ {
			names = append(names, fmt.Sprintf("%q", fmt.Sprintf("repo%04d", i)))
		}
		if start+per < total {
			w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?last=repo%04d&n=%d>; rel="next"`, start+per-1, per))
		}
		fmt.Fprintf(w, `{"repositories":[%s]}`, strings.Join(names, ","))
	}))
	defer srv.Close()
	tgt := testcfg.Target(t, strings.TrimPrefix(srv.URL, "http://"))
	repos, err := tgt.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != total || repos[0] != "repo0000" || repos[total-1] != "repo2499" || pages != total/per {
		t.Fatalf("got %d repositories in %d pages", len(repos), pages)
	}
	nosuch, _ := tgt.Repo("nosuch")
	if _, err := tgt.Tags(context.Background(), nosuch); !errors.Is(err, registry.ErrImageNotFound) {
		t.Fatalf("tags of unknown repo: %v", err)
	}
}

// List keeps the catalog's order while it asks for the tag lists several
// at a time (never more than listParallel) through one transport (a few
// pings, not one per repository), and a repository deleted between the
// catalog and its tag list has no tags.
func TestListOrderAndParallelism(t *testing.T) {
	const total = 60
	var mu sync.Mutex
	inFlight, most, pings := 0, 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			mu.Lock()
			pings++
			mu.Unlock()
			return
		case r.URL.Path == "/v2/_catalog":
			var names []string
			for i := range total {
				names = append(names, fmt.Sprintf("%q", fmt.Sprintf("ns/repo%02d", i)))
			}
			fmt.Fprintf(w, `{"repositories":[%s]}`, strings.Join(names, ","))
			return
		}
		repo, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/tags/list")
		if !ok || repo == "ns/repo13" {
			http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		fmt.Fprintf(w, `{"name":%q,"tags":["a-%s","b"]}`, repo, repo)
	}))
	defer srv.Close()
	repos, err := List(context.Background(), testcfg.Target(t, strings.TrimPrefix(srv.URL, "http://")))
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != total {
		t.Fatalf("got %d repositories, want %d", len(repos), total)
	}
	for i, r := range repos {
		name := fmt.Sprintf("ns/repo%02d", i)
		want := []string{"a-" + name, "b"}
		if i == 13 {
			want = []string{}
		}
		if r.Name != name || !slices.Equal(r.Tags, want) {
			t.Fatalf("repository %d: %s %q, want %s %q", i, r.Name, r.Tags, name, want)
		}
	}
	if pings > 4 {
		t.Errorf("%d pings of /v2/ for %d repositories", pings, total)
	}
	if most > listParallel || most < 2 {
		t.Fatalf("%d tag lists at once, want 2..%d", most, listParallel)
	}
}
