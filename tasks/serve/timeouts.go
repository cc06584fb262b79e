package serve

import (
	"io"
	"net/http"
	"time"

	"github.com/felixge/httpsnoop"
)

// Timeouts bound how long a connection may hold the server without
// progress. Uploads and downloads of any size may take as long as they
// need while bytes flow; a client that stops sending or reading, or that
// keeps a connection open without using it, loses it.
type Timeouts struct {
	// Idle closes a keep-alive connection that waits this long for its
	// next request. Longer than Go clients keep theirs (90s), so that
	// clients, not the server, normally close idle connections.
	Idle time.Duration
	// Header bounds the arrival of a request's headers (and a TLS
	// handshake).
	Header time.Duration
	// Stall closes a connection whose request body or response makes no
	// progress for this long.
	Stall time.Duration
}

// TimeoutsEnv shortens the timeouts in test builds (tag
// ocireg_testhooks; release builds ignore it): "idle=1s,header=1s,stall=2s",
// any subset.
const TimeoutsEnv = "OCIREG_TOOL_TEST_SERVER_TIMEOUTS"

// DefaultTimeouts are the timeouts of the registry server.
var DefaultTimeouts = Timeouts{Idle: 2 * time.Minute, Header: 30 * time.Second, Stall: 2 * time.Minute}

// apply sets the timeouts on srv and wraps its handler so that reading
// the request body and writing the response move the deadlines on.
// ReadTimeout stays unset: it would also bound the server's wait for the
// client to close during a long download and cancel it; progressDeadlines
// bounds the reads of the body instead. WriteTimeout is set so that every
// request starts with a fresh write deadline.
func (t Timeouts) apply(srv *http.Server) {
	srv.IdleTimeout = t.Idle
	srv.ReadHeaderTimeout = t.Header // also bounds a TLS handshake
	srv.WriteTimeout = t.Stall
	srv.Handler = progressDeadlines(t.Stall, srv.Handler)
}

// progressChunk is the most a response write sends under one write
// deadline: large enough that sendfile moves blobs in big pieces (32 KiB
// cost downloads a quarter of their speed), small enough that any client
// faster than 9 KB/s makes progress within the 2-minute stall limit.
const progressChunk = 1 << 20

// progressDeadlines moves the connection's read deadline to stall from
// now before each read of the request body, and its write deadline before
// each write of the response (at most progressChunk bytes each), before
// the headers and once more when the handler returns.
func progressDeadlines(stall time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		extendWrite := func() { _ = rc.SetWriteDeadline(time.Now().Add(stall)) }
		if r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(stall))
			r.Body = &progressBody{ReadCloser: r.Body, rc: rc, stall: stall}
		}
		w = httpsnoop.Wrap(w, httpsnoop.Hooks{
			WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
				return func(code int) { extendWrite(); next(code) }
			},
			Flush: func(next httpsnoop.FlushFunc) httpsnoop.FlushFunc {
				return func() { extendWrite(); next() }
			},
			Write: func(write httpsnoop.WriteFunc) httpsnoop.WriteFunc {
				return func(p []byte) (int, error) {
					var n int
					for len(p) > 0 {
						extendWrite()
						k, err := write(p[:min(len(p), progressChunk)])
						n += k
						if err != nil {
							return n, err
						}
						p = p[k:]
					}
					return n, nil
				}
			},
			ReadFrom: func(readFrom httpsnoop.ReadFromFunc) httpsnoop.ReadFromFunc {
				return func(src io.Reader) (int64, error) {
					var total int64
					for {
						extendWrite()
						n, err := readFrom(io.LimitReader(src, progressChunk))
						total += n
						if err != nil || n < progressChunk {
							return total, err
						}
					}
				}
			},
		})
		next.ServeHTTP(w, r)
		// What the handler left buffered goes out after it returns.
		extendWrite()
	})
}

// progressBody moves the read deadline on before each read, and lifts it
// once the body is read: the server's wait for the next request has
// timeouts of its own.
type progressBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.stall))
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
