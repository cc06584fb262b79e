package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// The real registry answers 301 to a path with a dot segment or an empty
// component. A client that follows it turns DELETE or PUT into a GET that
// succeeds: the false "Deleted successfully" of issue 11. The one Target's
// transport refuses the redirect of a write, and the tag stays. (The
// commands never send such a path: names are validated first, see the
// "dots:" rows of TestBadInput. This drives the transport itself.)
func TestWriteRedirectRefused(t *testing.T) {
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": deployTree(t)})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "container-base", "--strategy", "latest")
	before := e.snapshot(t)
	if before["yocto/container-base:latest"] == "" {
		t.Fatalf("nothing pushed: %v", before)
	}
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": e.Storage, "CONTAINER_REGISTRY_URL": e.URL, "CONTAINER_REGISTRY_INSECURE": "1"})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := registry.New(c, e.Script, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := &http.Client{Transport: tg.Transport}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	request := func(method, url string) *http.Request {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPut {
			req.Header.Set("Content-Type", "application/vnd.oci.image.index.v1+json")
			req.Body = http.NoBody
		}
		return req
	}
	for _, repo := range []string{"yocto/../yocto/container-base", "yocto//container-base", "yocto/./container-base"} {
		for _, method := range []string{http.MethodDelete, http.MethodPut} {
			url := tg.URL() + "/v2/" + repo + "/manifests/latest"
			what := method + " " + url
			resp, err := noFollow.Do(request(method, url))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 3 {
				t.Fatalf("%s: the registry answered %s, not a redirect: this test proves nothing", what, resp.Status)
			}
			// What a following client makes of it: a GET that succeeds.
			resp, err = http.DefaultClient.Do(request(method, url))
			if err != nil {
				t.Fatalf("%s (followed): %v", what, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodGet {
				t.Errorf("%s, followed: %s %s, want the false success (200 to a GET)", what, resp.Request.Method, resp.Status)
			}
			// The Target's transport refuses.
			resp, err = target.Do(request(method, url))
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s through the Target: %s, want a refused redirect", what, resp.Status)
				continue
			}
			if !strings.Contains(err.Error(), "refusing to follow a redirect of a "+method) || !strings.Contains(err.Error(), "301") {
				t.Errorf("%s through the Target: %v", what, err)
			}
		}
	}
	sameTags(t, "after the refused redirects", before, e.snapshot(t))
	if r := e.Run("tags", "container-base"); r.Code != 0 || !strings.Contains(r.Stdout, "latest") {
		t.Errorf("tags container-base: exit %d\n%s", r.Code, r.Out())
	}
}
