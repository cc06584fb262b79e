package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

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
