package referrers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/distribution/reference"
	"github.com/felixge/httpsnoop"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/internal/testhook"
)

// The OCI 1.1 referrers API in front of distribution's application, which
// stores manifests with a subject but cannot list them: GET
// /v2/<name>/referrers/<digest>, the OCI-Subject header on manifest PUTs,
// and the records kept up to date by manifest PUT and DELETE. The records
// must go through the storage driver the application uses (the server
// hands it over).

const (
	// maxManifest is the largest manifest body distribution accepts.
	maxManifest = 4 << 20
	// pageDefault and pageMax bound the descriptors of one referrers page
	// (the n query parameter, as for tags): go-containerregistry reads
	// only the first page.
	pageDefault = 1000
	pageMax     = 10000
)

// API serves the referrers API in front of a registry application.
type API struct {
	ac       auth.AccessController // nil without auth
	readOnly bool
	store    *Store
	next     http.Handler
	log      *logrus.Entry
	locks    subjectLocks
}

// subjectLocks serialize the manifest PUTs and DELETEs of the referrers of
// one subject in one repository in this process: each writes the record
// and has the application store or delete the manifest as one step, so a
// PUT and a DELETE racing cannot leave a stored referrer without its
// record. Replicas of a shared backend do not share these locks; for them
// a PUT checks its record again after the manifest is stored, and a
// DELETE records the referrer again when the manifest is back after the
// record went (Store.Ensure, Store.Removed).
type subjectLocks struct {
	mu sync.Mutex
	m  map[string]*subjectLock
}

type subjectLock struct {
	sync.Mutex
	users int
}

// lock takes the lock of subject in repo and returns its release.
func (l *subjectLocks) lock(repo string, subject digest.Digest) func() {
	key := repo + "@" + subject.String()
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*subjectLock{}
	}
	sl := l.m[key]
	if sl == nil {
		sl = &subjectLock{}
		l.m[key] = sl
	}
	sl.users++
	l.mu.Unlock()
	sl.Lock()
	return func() {
		sl.Unlock()
		l.mu.Lock()
		if sl.users--; sl.users == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}

// NewAPI serves the referrers API of the records in store in front of
// next, distribution's application over the same storage, behind ac (nil:
// no authentication). A readOnly registry (storage.maintenance.readonly)
// records nothing.
func NewAPI(store *Store, next http.Handler, ac auth.AccessController, readOnly bool, log *logrus.Entry) *API {
	return &API{ac: ac, readOnly: readOnly, store: store, next: next, log: log}
}

// ServeHTTP routes referrers queries and manifest PUTs and DELETEs; the
// rest goes to the application unchanged.
func (api *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		api.next.ServeHTTP(w, r)
		return
	}
	if name, dg, ok := cutRoute(rest, "/referrers/"); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		api.list(w, r, name, dg)
		return
	}
	if name, ref, ok := cutRoute(rest, "/manifests/"); ok {
		switch r.Method {
		case http.MethodPut:
			api.put(w, r, name, ref)
			return
		case http.MethodDelete:
			api.delete(w, r, name, ref)
			return
		}
	}
	api.next.ServeHTTP(w, r)
}

// cutRoute splits <name><sep><last> where name is a repository name and
// last one path component.
func cutRoute(rest, sep string) (name, last string, ok bool) {
	i := strings.LastIndex(rest, sep)
	if i <= 0 {
		return "", "", false
	}
	name, last = rest[:i], rest[i+len(sep):]
	if last == "" || strings.Contains(last, "/") {
		return "", "", false
	}
	if _, err := reference.WithName(name); err != nil {
		return "", "", false
	}
	return name, last, true
}

// authorized asks the access controller for actions on repository repo,
// as the application does; on refusal it has answered the request.
func (api *API) authorized(w http.ResponseWriter, r *http.Request, repo string, actions ...string) bool {
	if api.ac == nil {
		return true
	}
	var access []auth.Access
	for _, a := range actions {
		access = append(access, auth.Access{Resource: auth.Resource{Type: "repository", Name: repo}, Action: a})
	}
	if _, err := api.ac.Authorized(r, access...); err != nil {
		var ch auth.Challenge
		if errors.As(err, &ch) {
			ch.SetHeaders(r, w)
			_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized.WithDetail(access))
			return false
		}
		api.log.Errorf("referrers: checking authorization: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	return true
}

// list answers GET and HEAD /v2/<name>/referrers/<digest>: an image index
// of the referrers, possibly empty, never 404.
func (api *API) list(w http.ResponseWriter, r *http.Request, name, dg string) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if !api.authorized(w, r, name, "pull") {
		return
	}
	subject, err := digest.Parse(dg)
	if err != nil {
		_ = errcode.ServeJSON(w, v2.ErrorCodeDigestInvalid.WithDetail(dg))
		return
	}
	q, err := pageQuery(r.URL.Query())
	if err != nil {
		_ = errcode.ServeJSON(w, v2.ErrorCodePaginationNumberInvalid.WithDetail(err.Error()))
		return
	}
	page, more, err := api.store.List(r.Context(), name, subject, q)
	if err != nil {
		api.log.Errorf("referrers: %v", err)
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	body, err := EncodePage(page)
	if err != nil {
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	h := w.Header()
	h.Set("Content-Type", v1.MediaTypeImageIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if q.ArtifactType != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	if more {
		h.Set("Link", nextLink(name, subject, q, page[len(page)-1].Digest))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// pageQuery reads artifactType, n and last.
func pageQuery(v url.Values) (Query, error) {
	q := Query{ArtifactType: v.Get("artifactType"), N: pageDefault}
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > pageMax {
			return q, fmt.Errorf("n must be 1 to %d, not %q", pageMax, s)
		}
		q.N = n
	}
	if s := v.Get("last"); s != "" {
		d, err := digest.Parse(s)
		if err != nil {
			return q, fmt.Errorf("last: %v", err)
		}
		q.Last = d
	}
	return q, nil
}

// nextLink is the Link header of the page after the one ending at last.
func nextLink(name string, subject digest.Digest, q Query, last digest.Digest) string {
	v := url.Values{}
	v.Set("n", strconv.Itoa(q.N))
	v.Set("last", last.String())
	if q.ArtifactType != "" {
		v.Set("artifactType", q.ArtifactType)
	}
	return fmt.Sprintf(`</v2/%s/referrers/%s?%s>; rel="next"`, name, subject, v.Encode())
}

// put records the referrer before the application stores a manifest with
// a subject, then passes the PUT on and adds OCI-Subject to its 201, under
// the lock of the subject (see subjectLocks). The record is written only
// for a client allowed to push.
func (api *API) put(w http.ResponseWriter, r *http.Request, name, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil {
		_ = errcode.ServeJSON(w, v2.ErrorCodeManifestInvalid.WithDetail(fmt.Sprintf("reading the body: %v", err)))
		return
	}
	// What was read, then the rest: the application judges the size.
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	alg := digest.Canonical
	if d, err := digest.Parse(ref); err == nil {
		alg = d.Algorithm()
	}
	if len(body) > maxManifest || !alg.Available() {
		api.next.ServeHTTP(w, r)
		return
	}
	dgst := alg.FromBytes(body)
	info, err := Parse(r.Header.Get("Content-Type"), body, dgst)
	if err != nil || info.Subject == "" {
		api.next.ServeHTTP(w, r) // the application judges it
		return
	}
	if !api.authorized(w, r, name, "pull", "push") {
		return
	}
	if api.readOnly {
		api.next.ServeHTTP(w, r) // the application refuses it
		return
	}
	defer api.locks.lock(name, info.Subject)()
	if err := api.store.Add(r.Context(), name, info.Subject, dgst); err != nil {
		api.log.Errorf("referrers: %v", err)
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnknown.WithDetail(err.Error()))
		return
	}
	testhook.Pause("referrer-recorded")
	stored := false
	hooked := httpsnoop.Wrap(w, httpsnoop.Hooks{WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
		return func(code int) {
			if code == http.StatusCreated {
				stored = true
				testhook.Pause("referrer-stored")
				w.Header().Set("OCI-Subject", info.Subject.String())
			}
			next(code)
		}
	}})
	api.next.ServeHTTP(hooked, r)
	if stored {
		// A DELETE through another replica may have removed the record
		// between Add and the store.
		if err := api.store.Ensure(context.WithoutCancel(r.Context()), name, info.Subject, dgst); err != nil {
			api.log.Warnf("referrers: %v", err)
		}
	}
}

// delete passes a manifest DELETE by digest on and, when the application
// deleted it, removes its record. A record left behind (a crash between
// the two) lists nothing: the manifest is gone.
func (api *API) delete(w http.ResponseWriter, r *http.Request, name, ref string) {
	dgst, err := digest.Parse(ref)
	if err != nil {
		api.next.ServeHTTP(w, r)
		return
	}
	info, held, err := api.store.Lookup(r.Context(), name, dgst)
	if err != nil || !held || info.Subject == "" {
		api.next.ServeHTTP(w, r)
		return
	}
	defer api.locks.lock(name, info.Subject)()
	m := httpsnoop.CaptureMetrics(api.next, w, r)
	if m.Code != http.StatusAccepted {
		return
	}
	if err := api.store.Removed(context.WithoutCancel(r.Context()), name, info.Subject, dgst); err != nil {
		api.log.Warnf("referrers: %v", err)
	}
}
