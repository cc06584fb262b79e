package registry

import (
	"io"
	"net/http"
	"sync/atomic"
)

// CountSent wraps rt so that the bytes of every request body it sends
// (blob uploads, manifest PUTs) are added to n: what a command reports as
// sent.
func CountSent(rt http.RoundTripper, n *atomic.Int64) http.RoundTripper {
	return &countSent{base: rt, n: n}
}

type countSent struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c *countSent) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countedBody{rc: req.Body, n: c.n}
	}
	return c.base.RoundTrip(req)
}

// CloseIdleConnections lets the wrapped transport's idle connections go.
func (c *countSent) CloseIdleConnections() {
	if ci, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

type countedBody struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countedBody) Close() error { return b.rc.Close() }
