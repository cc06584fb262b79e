package ui

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/auth"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/templates"
)

// Prefix is where the browser lives; "/" redirects there.
const Prefix = config.UIPath

// csp allows the page's own style sheet and script and nothing else: no
// inline code, no frames, forms only to this site.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Site is the registry browser of one embedded registry.
type Site struct {
	c     *config.Config
	cache *cache

	// Set by Attach while distribution builds the app.
	ns     distribution.Namespace
	driver storagedriver.StorageDriver

	access    auth.AccessController // nil without authentication
	artifacts Artifacts
}

// New makes the browser of the registry of c, or returns nil when
// CONTAINER_REGISTRY_UI=0. Have the application's namespace go through
// Attach while it is built (regstore.Capture.Wrap), then wrap the
// application with Handler.
func New(c *config.Config) *Site {
	if !c.UI {
		return nil
	}
	return &Site{c: c, cache: newCache()}
}

// pages are the page templates, parsed on first use: a registry nobody
// browses does not pay for them at start (start-to-ready is measured).
// They are embedded, so an error is a defect of the build (the tests parse
// them).
var pages = sync.OnceValues(parsePages)

// parsePages parses each page with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range []string{"index", "image", "registry", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templates.UI, "ui/layout.html.tmpl", "ui/"+name+".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// Handler serves the browser at Prefix (and redirects "/" there) and
// passes every other request to next. Pages are behind access (nil: no
// authentication; serve passes the one its API uses). A nil Site returns
// next. Call it after the application is built from New's configuration.
func (s *Site) Handler(next http.Handler, access auth.AccessController) (http.Handler, error) {
	if s == nil {
		return next, nil
	}
	if s.ns == nil {
		return nil, errors.New("ui: the registry application was built without Attach")
	}
	s.access = access
	static, err := fs.Sub(templates.UI, "ui/static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix(Prefix+"-/static/", http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p != "/" && p != "/ui" && !strings.HasPrefix(p, Prefix) {
			next.ServeHTTP(w, r)
			return
		}
		secureHeaders(w)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		if !s.authorized(w, r) {
			return
		}
		switch {
		case p == "/" || p == "/ui":
			http.Redirect(w, r, Prefix, http.StatusFound)
		case strings.HasPrefix(p, Prefix+"-/static/"):
			w.Header().Set("Cache-Control", "max-age=300")
			files.ServeHTTP(w, r)
		default:
			s.route(w, r, strings.TrimPrefix(p, Prefix))
		}
	}), nil
}

// secureHeaders sets the headers every page carries.
func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// authorized checks the request against the registry's own access
// controller (htpasswd: the browser's basic-auth prompt); on failure it has
// answered 401 with the challenge.
func (s *Site) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.access == nil {
		return true
	}
	_, err := s.access.Authorized(r, auth.Access{Resource: auth.Resource{Type: "registry", Name: "catalog"}, Action: "*"})
	if err == nil {
		return true
	}
	var ch auth.Challenge
	if errors.As(err, &ch) {
		ch.SetHeaders(r, w)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "authentication required", http.StatusUnauthorized)
	return false
}
