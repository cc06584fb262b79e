package replica

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// What a push in flight may still name. A client checks that a blob or a
// child manifest is stored (HEAD), or uploads or mounts it, and names it
// in a manifest it puts later; a gc between the two would sweep a blob no
// stored manifest references yet and the put would fail (or, for an
// index, name a child that is gone). Each replica remembers those digests
// until a manifest naming them is stored, or inUseWindow has passed, and
// hands them to the gc with its acknowledgement: the gc keeps them
// (gc.Options.InUse). A manifest stored by digest without a subject (the
// platform manifest of an index not put yet) is in use the same way; a
// referrer lives with its subject and needs no protection.
var (
	// inUseWindow bounds how long a push may take between naming a blob
	// and putting the manifest that references it.
	inUseWindow = time.Hour
	// maxInUse bounds the digests a replica remembers (about 100 bytes
	// each): past it, the oldest lose their protection first.
	maxInUse = 100_000
	// maxManifestRead bounds the manifest body the gate reads to release
	// the digests it names (distribution refuses larger manifests).
	maxManifestRead int64 = 4 << 20
)

// inUse is a replica's set of digests in use by pushes in flight, and of
// the uploads they have open (a push whose writes are held between two
// chunks goes on after the gc; an upload whose push failed or went away
// is garbage at once).
type inUse struct {
	mu      sync.Mutex
	at      map[digest.Digest]time.Time
	uploads map[string]time.Time
}

// touchUpload marks upload id as open now.
func (u *inUse) touchUpload(id string) {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/?") {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.uploads == nil {
		u.uploads = map[string]time.Time{}
	}
	if _, ok := u.uploads[id]; !ok && len(u.uploads) >= maxInUse {
		u.expireLocked(time.Now())
		for len(u.uploads) >= maxInUse {
			var oldest string
			var at time.Time
			for k, t := range u.uploads {
				if oldest == "" || t.Before(at) {
					oldest, at = k, t
				}
			}
			delete(u.uploads, oldest)
		}
	}
	u.uploads[id] = time.Now()
}

// closeUpload ends upload id: its blob is stored, or its push failed.
func (u *inUse) closeUpload(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.uploads, id)
}

// openUploads returns the uploads open, sorted.
func (u *inUse) openUploads() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expireLocked(time.Now())
	out := make([]string, 0, len(u.uploads))
	for id := range u.uploads {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// touch marks d as in use now.
func (u *inUse) touch(d digest.Digest) {
	if d.Validate() != nil {
		return
	}
	now := time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.at == nil {
		u.at = map[digest.Digest]time.Time{}
	}
	if _, ok := u.at[d]; !ok && len(u.at) >= maxInUse {
		u.expireLocked(now)
		for len(u.at) >= maxInUse {
			u.dropOldestLocked()
		}
	}
	u.at[d] = now
}

// release ends the use of ds: a stored manifest references them.
func (u *inUse) release(ds []digest.Digest) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, d := range ds {
		delete(u.at, d)
	}
}

// list returns the digests in use, sorted.
func (u *inUse) list() []digest.Digest {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expireLocked(time.Now())
	out := make([]digest.Digest, 0, len(u.at))
	for d := range u.at {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (u *inUse) expireLocked(now time.Time) {
	for d, t := range u.at {
		if now.Sub(t) > inUseWindow {
			delete(u.at, d)
		}
	}
	for id, t := range u.uploads {
		if now.Sub(t) > inUseWindow {
			delete(u.uploads, id)
		}
	}
}

func (u *inUse) dropOldestLocked() {
	var oldest digest.Digest
	var at time.Time
	for d, t := range u.at {
		if oldest == "" || t.Before(at) {
			oldest, at = d, t
		}
	}
	delete(u.at, oldest)
}

// requestKind is what a registry API request means to a gc.
type requestKind int

const (
	kindOther    requestKind = iota // reads: pulls, listings, the browser
	kindProbe                       // HEAD of a blob or manifest: a push asking what is stored
	kindWrite                       // anything that changes the registry
	kindManifest                    // a manifest put (a write)
	kindUpload                      // a request of an upload: start, chunk, end, cancel (a write)
)

// classify says what r is to a gc, and the digest it names that a push
// may still reference later (a probed blob or manifest, an uploaded or
// mounted blob), "" for none.
func classify(r *http.Request) (requestKind, digest.Digest) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/v2/") {
		return kindOther, ""
	}
	last := p[strings.LastIndexByte(p, '/')+1:]
	switch r.Method {
	case http.MethodGet, http.MethodOptions:
		return kindOther, ""
	case http.MethodHead:
		if strings.Contains(p, "/blobs/") || strings.Contains(p, "/manifests/") {
			return kindProbe, digest.Digest(last)
		}
		return kindOther, ""
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && strings.Contains(p, "/manifests/"):
		return kindManifest, ""
	case strings.Contains(p, "/blobs/uploads/") && q.Get("mount") != "":
		return kindUpload, digest.Digest(q.Get("mount"))
	case strings.Contains(p, "/blobs/uploads/"):
		return kindUpload, digest.Digest(q.Get("digest"))
	}
	return kindWrite, ""
}

// manifestRefs reads what the gate needs of a manifest put: the digests
// the manifest names (config, layers, index entries), and whether it has
// a subject.
func manifestRefs(body []byte) (refs []digest.Digest, subject bool) {
	type desc struct {
		Digest digest.Digest `json:"digest"`
	}
	var m struct {
		Config    *desc  `json:"config"`
		Layers    []desc `json:"layers"`
		Manifests []desc `json:"manifests"`
		Subject   *desc  `json:"subject"`
	}
	if json.Unmarshal(body, &m) != nil {
		return nil, false
	}
	if m.Config != nil {
		refs = append(refs, m.Config.Digest)
	}
	for _, l := range append(m.Layers, m.Manifests...) {
		refs = append(refs, l.Digest)
	}
	return refs, m.Subject != nil
}

// teeBody keeps up to max bytes of what the handler reads of a request
// body.
type teeBody struct {
	io.ReadCloser
	buf  bytes.Buffer
	max  int64
	over bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 && !t.over {
		if int64(t.buf.Len()+n) > t.max {
			t.over = true
			t.buf.Reset()
		} else {
			t.buf.Write(p[:n])
		}
	}
	return n, err
}

// statusWriter records the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveManifestPut serves a manifest put and, once it is stored, ends the
// use of what it names; a manifest stored by digest without a subject is
// in use itself until an index names it.
func (m *Member) serveManifestPut(next http.Handler, w http.ResponseWriter, r *http.Request) {
	tee := &teeBody{ReadCloser: r.Body, max: maxManifestRead}
	r.Body = tee
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	if sw.status != http.StatusCreated || tee.over {
		return
	}
	refs, subject := manifestRefs(tee.buf.Bytes())
	m.inuse.release(refs)
	p := r.URL.Path
	if ref := digest.Digest(p[strings.LastIndexByte(p, '/')+1:]); !subject && ref.Validate() == nil {
		m.inuse.touch(ref)
	}
}

// serveUpload serves a request of an upload and follows the upload: open
// from the start (its id is in the answer's Location) until its blob is
// stored, it is cancelled, or a request of it fails (a retry opens it
// again).
func (m *Member) serveUpload(next http.Handler, w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	id := ""
	if i := strings.Index(p, "/blobs/uploads/"); i >= 0 {
		id = p[i+len("/blobs/uploads/"):]
	}
	if id != "" {
		m.inuse.touchUpload(id)
	}
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	switch {
	case id == "" && sw.status == http.StatusAccepted:
		loc := sw.Header().Get("Location")
		if i := strings.Index(loc, "/blobs/uploads/"); i >= 0 {
			started, _, _ := strings.Cut(loc[i+len("/blobs/uploads/"):], "?")
			m.inuse.touchUpload(started)
		}
	case id == "":
	case r.Method == http.MethodDelete || r.Method == http.MethodPut || sw.status >= 400:
		m.inuse.closeUpload(id)
	}
}
