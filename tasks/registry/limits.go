package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
)

// The limits of what the tool reads from a registry into memory and
// parses (go-containerregistry bounds a manifest at 100 MiB and an image
// config not at all). Each is checked against the size a descriptor
// declares before anything is fetched, when there is a descriptor, and on
// the bytes themselves whatever the registry sends. README.md lists them.
const (
	// MaxManifestBytes bounds a manifest or image index: distribution
	// refuses to store larger ones, and so does tasks/ocilayout
	// (MaxDocumentSize).
	MaxManifestBytes = 4 << 20
	// MaxConfigBytes bounds an image config (as tasks/ocilayout's
	// MaxConfigSize).
	MaxConfigBytes = 8 << 20
	// MaxReferrersPageBytes bounds one page of a referrers answer: the
	// size serve pages by (referrers.MaxPageBytes), so the two agree.
	MaxReferrersPageBytes = referrers.MaxPageBytes
	// MaxReferrersPages bounds the Link pages of one referrers answer.
	MaxReferrersPages = 100
)

// TooLargeError says a registry declared or sent more than a limit.
type TooLargeError struct {
	What  string // "manifest /v2/…/manifests/latest", "config sha256:…"
	Size  int64  // declared size; -1 when only the bytes sent told
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("the registry sent more than the limit of %s for %s", mib(e.Limit), e.What)
	}
	return fmt.Sprintf("%s is %d bytes, more than the limit of %s", e.What, e.Size, mib(e.Limit))
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

var (
	manifestPath  = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)
	referrersPath = regexp.MustCompile(`^/v2/.+/referrers/[^/]+$`)
)

// LimitAnswers wraps rt so that the body of every manifest and referrers
// answer (GET /v2/<name>/manifests/<ref>, /v2/<name>/referrers/<digest>)
// is bounded: a Content-Length above the limit is refused before the body
// is read, and a body that runs past it fails the read. Target's transport
// has it; a transport to another registry (import's source) gets it here.
func LimitAnswers(rt http.RoundTripper) http.RoundTripper { return &limitAnswers{base: rt} }

type limitAnswers struct{ base http.RoundTripper }

func (t *limitAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	var limit int64
	switch {
	case manifestPath.MatchString(req.URL.Path):
		limit = MaxManifestBytes
	case referrersPath.MatchString(req.URL.Path):
		limit = MaxReferrersPageBytes
	default:
		return resp, nil
	}
	what := "answer " + req.URL.Path
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, &TooLargeError{What: what, Size: resp.ContentLength, Limit: limit}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, err: &TooLargeError{What: what, Size: -1, Limit: limit}}
	return resp, nil
}

// CloseIdleConnections lets the wrapped transport's idle connections go.
func (t *limitAnswers) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// limitedBody fails a read that goes past left bytes.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, b.err
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// ConfigFile reads and parses the config of img, bounded by
// MaxConfigBytes: a config whose manifest declares more is not fetched at
// all, and the bytes are read through a limit (for an image of a
// registry, streamed from the blob and checked against its digest, never
// through go-containerregistry's RawConfigFile, which reads any size).
func ConfigFile(img v1.Image) (*v1.ConfigFile, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	what := "config " + m.Config.Digest.String()
	if m.Config.Size > MaxConfigBytes {
		return nil, &TooLargeError{What: what, Size: m.Config.Size, Limit: MaxConfigBytes}
	}
	l, err := partial.ConfigLayer(img)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(data) > MaxConfigBytes {
		return nil, &TooLargeError{What: what, Size: -1, Limit: MaxConfigBytes}
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", what, err)
	}
	return cf, nil
}
