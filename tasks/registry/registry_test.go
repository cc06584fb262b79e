package registry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/regauth"
)

func newTarget(t *testing.T, vars config.Vars) *Target {
	t.Helper()
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir()}.Overlay(vars))
	if err != nil {
		t.Fatal(err)
	}
	tg, err := New(c, "container-registry.sh", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// The one scheme rule: the mode decides, not the host name.
func TestSchemeRule(t *testing.T) {
	for _, host := range []string{"localhost:5000", "127.0.0.1:5000", "127.0.0.2:5000", "buildhost:5000", "192.168.7.2:5000"} {
		for mode, want := range map[string]string{"default": "http", "insecure": "http", "secure": "https"} {
			vars := config.Vars{"CONTAINER_REGISTRY_URL": host}
			switch mode {
			case "insecure":
				vars["CONTAINER_REGISTRY_INSECURE"] = "1"
			case "secure":
				vars["CONTAINER_REGISTRY_SECURE"] = "1"
			}
			tg := newTarget(t, vars)
			if got := tg.URL(); got != want+"://"+host {
				t.Errorf("%s %s: URL %s, want %s://", host, mode, got, want)
			}
			ref, err := tg.Tag("app", "v1")
			if err != nil {
				t.Fatal(err)
			}
			// ggcr may still try https first for an insecure name; what
			// must not happen is https-only for a plain registry.
			if want == "http" && ref.Context().Registry.Scheme() != "http" {
				t.Errorf("%s %s: reference scheme %s", host, mode, ref.Context().Registry.Scheme())
			}
		}
	}
}

// Ping's typed errors: down, the other protocol, credentials.
func TestPingErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	var nr *NotRespondingError
	if err := newTarget(t, config.Vars{"CONTAINER_REGISTRY_URL": down}).Ping(context.Background()); !errors.As(err, &nr) ||
		err.Error() != "Registry not responding at http://"+down || !strings.HasSuffix(nr.Script, "container-registry.sh") {
		t.Errorf("down: %v", err)
	}

	plain := testreg.New(t)
	dir := t.TempDir()
	secure := newTarget(t, config.Vars{"CONTAINER_REGISTRY_URL": plain.Host, "CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0", "CONTAINER_REGISTRY_STORAGE": dir})
	var wp *WrongProtocolError
	if err := secure.Ping(context.Background()); !errors.As(err, &wp) || wp.Got != "HTTP" {
		t.Errorf("https against http: %v", err)
	}

	locked := testreg.New(t, testreg.WithHtpasswd("yocto", "right"))
	var ae *AuthError
	anon := newTarget(t, config.Vars{"CONTAINER_REGISTRY_URL": locked.Host})
	if err := anon.Ping(context.Background()); !errors.As(err, &ae) || !strings.Contains(err.Error(), "requires authentication") {
		t.Errorf("anonymous against auth: %v", err)
	}
	c, _ := config.FromVars(config.Vars{"CONTAINER_REGISTRY_URL": locked.Host, "CONTAINER_REGISTRY_STORAGE": dir})
	wrong, _ := New(c, "s", &regauth.Resolved{Auth: basic("yocto", "wrong"), Source: "--creds (user yocto)"})
	if err := wrong.Ping(context.Background()); !errors.As(err, &ae) || !strings.Contains(err.Error(), "rejected the credentials from --creds (user yocto)") {
		t.Errorf("wrong creds: %v", err)
	}
	right, _ := New(c, "s", &regauth.Resolved{Auth: basic("yocto", "right"), Source: "--creds (user yocto)"})
	if err := right.Ping(context.Background()); err != nil {
		t.Errorf("right creds: %v", err)
	}
}

// The local registry's own password file is used in auth mode, read with
// the same rule it is written with.
func TestLocalCredentials(t *testing.T) {
	locked := testreg.New(t, testreg.WithHtpasswd("yocto", "s3cret"))
	dir := t.TempDir()
	// Secure mode would need TLS; AUTH without TLS is not a mode, so the
	// test sets the credentials the way a secure Target would read them.
	if err := os.MkdirAll(filepath.Join(dir, "auth"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "auth", "password"), []byte("s3cret\n"), 0o600)
	c, _ := config.FromVars(config.Vars{"CONTAINER_REGISTRY_URL": locked.Host, "CONTAINER_REGISTRY_STORAGE": dir})
	c.Auth = true
	tg, err := New(c, "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Ping(context.Background()); err != nil {
		t.Fatalf("ping with the password file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "auth", "password"), []byte(" s3cret \n"), 0o600)
	tg, _ = New(c, "s", nil)
	if err := tg.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "white space") {
		t.Fatalf("password file with spaces: %v", err)
	}
}

// A redirect in answer to DELETE is an error, never a GET that "succeeds".
func TestNoRedirectOnDelete(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" || r.Method == http.MethodGet {
			return
		}
		http.Redirect(w, r, "/v2/yocto/app/manifests/latest", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	tg := newTarget(t, config.Vars{"CONTAINER_REGISTRY_URL": strings.TrimPrefix(srv.URL, "http://")})
	ref, _ := tg.Tag("app", "latest")
	err := remote.Delete(ref, tg.Options(context.Background())...)
	if err == nil || !strings.Contains(err.Error(), "refusing to follow a redirect") {
		t.Fatalf("delete answered by a redirect: %v", err)
	}
}

// Listing goes through ggcr remote, all pages, against a real registry.
func TestCatalogAndTags(t *testing.T) {
	reg := testreg.New(t)
	tg := newTarget(t, config.Vars{"CONTAINER_REGISTRY_URL": reg.Host})
	img, _ := random.Image(64, 1)
	for _, tag := range []string{"a", "b"} {
		ref, _ := tg.Tag("app", tag)
		if err := remote.Write(ref, img, tg.Options(context.Background())...); err != nil {
			t.Fatal(err)
		}
	}
	repos, err := tg.Catalog(context.Background())
	if err != nil || len(repos) != 1 || repos[0] != "yocto/app" {
		t.Fatalf("catalog %v %v", repos, err)
	}
	app, _ := tg.Repo("app")
	tags, err := tg.Tags(context.Background(), app)
	if err != nil || strings.Join(tags, ",") != "a,b" {
		t.Fatalf("tags %v %v", tags, err)
	}
	none, _ := tg.Repo("none")
	if _, err := tg.Tags(context.Background(), none); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("unknown repository: %v", err)
	}
}

func basic(user, pass string) authn.Authenticator {
	return &authn.Basic{Username: user, Password: pass}
}

// TestIsFallbackTag: exactly the tags FallbackTag makes.
func TestIsFallbackTag(t *testing.T) {
	repo, _ := name.NewRepository("localhost:5000/yocto/x")
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if tag := FallbackTag(repo, h).TagStr(); !IsFallbackTag(tag) {
		t.Errorf("%s not recognised", tag)
	}
	for _, tag := range []string{"latest", "sha256-abc", "sha256-" + strings.Repeat("zz", 32), "v1-" + strings.Repeat("ab", 32), "sha256"} {
		if IsFallbackTag(tag) {
			t.Errorf("%s taken for a referrers tag", tag)
		}
	}
}

// After a successful Ping the Target's clients and Authorized transport
// reach the registry without pinging it again, with and without
// credentials.
func TestPingOncePerRun(t *testing.T) {
	for _, auth := range []bool{false, true} {
		var opts []testreg.Option
		if auth {
			opts = append(opts, testreg.WithHtpasswd("yocto", "secret"))
		}
		reg := testreg.New(t, opts...)
		pings := 0
		counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				pings++
			}
			reg.Server.Config.Handler.ServeHTTP(w, r)
		}))
		defer counting.Close()
		vars := config.Vars{"CONTAINER_REGISTRY_URL": strings.TrimPrefix(counting.URL, "http://"), "CONTAINER_REGISTRY_INSECURE": "1"}
		c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir()}.Overlay(vars))
		if err != nil {
			t.Fatal(err)
		}
		var creds *regauth.Resolved
		if auth {
			creds = &regauth.Resolved{Auth: &authn.Basic{Username: "yocto", Password: "secret"}, Source: "test"}
		}
		tg, err := New(c, "container-registry.sh", creds)
		if err != nil {
			t.Fatal(err)
		}
		if tg.Authorized() != nil {
			t.Fatal("an Authorized transport before Ping")
		}
		if err := tg.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		before := pings
		repo, _ := tg.Repo("x")
		for range 3 {
			cl, err := tg.Client(context.Background(), repo, "push", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cl.Get(counting.URL + "/v2/yocto/x/tags/list")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("auth %v: tags/list answered %s, want 404 (authenticated, no repository)", auth, resp.Status)
			}
		}
		if _, err := remote.List(repo, tg.Options(context.Background(), remote.WithTransport(tg.Authorized()))...); err == nil {
			t.Fatalf("auth %v: listing a missing repository succeeded", auth)
		}
		if pings != before {
			t.Errorf("auth %v: %d more pings after Ping, want none", auth, pings-before)
		}
	}
}
