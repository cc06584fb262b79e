package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The one retry policy of requests to a registry, ggcr's and our own:
// a transient failure (a dropped connection, or an answer of
// retryStatusCodes) is tried again after 100 ms, 300 ms and 900 ms.
// distribution 2.8 answers 500 to a blob HEAD racing an upload of the
// same blob, and a shared backend's hiccup surfaces as 5xx.
var (
	retryBackoff     = transport.Backoff{Duration: 100 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 4}
	retryStatusCodes = []int{
		http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
		499, // nginx: client closed the request
		522, // Cloudflare: connection timed out
	}
)

// retryOptions hand the policy to go-containerregistry, which applies it
// to every request of a remote call and to whole blob uploads.
func retryOptions() []remote.Option {
	return []remote.Option{remote.WithRetryBackoff(retryBackoff), remote.WithRetryStatusCodes(retryStatusCodes...), remote.WithRetryPredicate(transient)}
}

// transient reports whether err is worth trying again: a *transport.Error
// the policy's status codes made temporary, or a dropped connection.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retrying applies the policy to our own requests over rt. Only a request
// without a body is tried again: a transport cannot send a body twice
// (the first try read it); its caller retries it whole if it must.
type retrying struct{ once, again http.RoundTripper }

func newRetrying(rt http.RoundTripper) *retrying {
	return &retrying{once: rt, again: transport.NewRetry(rt, transport.WithRetryBackoff(retryBackoff),
		transport.WithRetryStatusCodes(retryStatusCodes...), transport.WithRetryPredicate(transient))}
}

func (r *retrying) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return r.again.RoundTrip(req)
	}
	return r.once.RoundTrip(req)
}

// Client is an HTTP client for requests of our own to repo (scope is
// transport.PullScope or PushScope), authenticated as ggcr's are and with
// the retry policy, over base (nil: the shared Transport). With base nil
// after a successful Ping it is the Authorized transport: no ping.
func (t *Target) Client(ctx context.Context, repo name.Repository, scope string, base http.RoundTripper) (*http.Client, error) {
	if base == nil {
		if rt := t.Authorized(); rt != nil {
			return &http.Client{Transport: rt}, nil
		}
		base = t.Transport
	}
	rt, err := transport.NewWithContext(ctx, t.Registry, t.Auth, newRetrying(base), []string{repo.Scope(scope)})
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt}, nil
}

// Retry calls try until it succeeds, fails for good or the policy's
// steps are spent: a transient failure is tried again after the policy's
// back-off. It is for what the transport cannot repeat itself, such as a
// blob upload (a request with a body, started anew by a POST).
func Retry(ctx context.Context, try func() error) error {
	b := retryBackoff
	for {
		err := try()
		if err == nil || !transient(err) || b.Steps <= 1 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(b.Step()):
		}
	}
}

// IsNotFound reports whether err is a registry 404.
func IsNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
