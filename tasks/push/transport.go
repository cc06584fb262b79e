package push

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// countingTransport counts the request body bytes of blob uploads, so a
// push can say exactly how much it sent.
type countingTransport struct {
	base http.RoundTripper
	sent atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Method != http.MethodGet && req.Method != http.MethodHead &&
		strings.Contains(req.URL.Path, "/blobs/uploads/") {
		req = req.Clone(req.Context())
		req.Body = &countingBody{r: req.Body, n: &t.sent}
	}
	return t.base.RoundTrip(req)
}

type countingBody struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }
