package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-envparse"

	"github.com/ocireg-tool/ocireg-tool/internal/redact"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// Backend is the shared object storage of CONTAINER_REGISTRY_BACKEND: an
// S3 bucket (any S3-compatible endpoint, path-style addressing). The zero
// value is the local filesystem under the storage directory.
type Backend struct {
	// URL is the setting as written (it holds no secret: the parser
	// refuses credentials in it).
	URL    string
	Bucket string
	// Prefix is the key prefix inside the bucket ("" : the bucket's root).
	Prefix string
	// Endpoint is the S3 endpoint URL (http:// or https://); "" : AWS.
	Endpoint string
	Region   string
	// CA is a PEM file of the certificate authorities the endpoint's
	// certificate is checked against ("": the system's).
	CA string
	// VirtualHost is true for virtual-hosted-style addressing
	// (bucket.host); the default is path-style (host/bucket), which every
	// S3-compatible engine serves.
	VirtualHost bool
}

// S3 reports whether the backend is an S3 bucket.
func (b Backend) S3() bool { return b.Bucket != "" }

// String is the backend as status and logs show it: the URL (the parser
// refuses credentials in it and its endpoint=; redact.URL covers any
// other parameter), or "filesystem".
func (b Backend) String() string {
	if !b.S3() {
		return "filesystem"
	}
	return redact.URL(b.URL)
}

// Identity names the storage the backend holds, whatever the query
// spelling: endpoint, bucket and prefix.
func (b Backend) Identity() string {
	return strings.TrimRight(b.Endpoint, "/") + "/" + b.Bucket + "/" + b.Prefix
}

// MaxBackendCABytes bounds the backend's ca= file (a bundle of every
// public CA is about 220 KiB).
const MaxBackendCABytes = 1 << 20

// CheckCA reads the backend's ca= file as the S3 driver will (regular
// file, at most MaxBackendCABytes) and checks that it holds a PEM
// certificate. No ca=: nil. generate checks it, and start before the
// file reaches the driver (which reads it without a limit).
func (b Backend) CheckCA() error {
	if b.CA == "" {
		return nil
	}
	data, err := safefile.ReadRegular(b.CA, MaxBackendCABytes)
	if err == nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			err = errors.New("no PEM certificate in it")
		}
	}
	if err != nil {
		return fmt.Errorf("CONTAINER_REGISTRY_BACKEND: ca=%s: %w", b.CA, err)
	}
	return nil
}

// Redis is the redis server of CONTAINER_REGISTRY_REDIS.
type Redis struct {
	Addr string // host:port
	DB   int
}

// Set reports whether a redis server is configured.
func (r Redis) Set() bool { return r.Addr != "" }

// backendParams are the query parameters CONTAINER_REGISTRY_BACKEND accepts.
var backendParams = []string{"endpoint", "region", "ca", "addressing"}

// parseBackend checks CONTAINER_REGISTRY_BACKEND: empty, or
// s3://bucket[/prefix][?endpoint=URL&region=R&ca=FILE&addressing=path|virtual].
// The query is read with url.ParseQuery, which refuses what url.Query()
// would silently drop (a ';' separator, a bad % escape): a typo must not
// send the registry to AWS. A parameter given twice is refused too. The
// messages show the value through redact.URL.
func parseBackend(c *Config, v string) error {
	c.Backend = Backend{}
	if v == "" {
		return nil
	}
	shown := redact.URL(v)
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("not a storage URL (s3://bucket/prefix?endpoint=http://host:8333&region=us-east-1): %v", redactURLError(err))
	}
	if u.User != nil {
		return fmt.Errorf("credentials do not belong in the storage URL (it is baked into the helper script and shown by status): use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or CONTAINER_REGISTRY_BACKEND_CREDENTIALS")
	}
	if u.Scheme != "s3" {
		return fmt.Errorf("%q: unknown storage scheme %q (s3://bucket/prefix; empty: the local filesystem)", shown, u.Scheme)
	}
	b := Backend{URL: v, Bucket: u.Host, Prefix: strings.Trim(path.Clean("/"+u.Path), "/"), Region: "us-east-1"}
	if b.Bucket == "" {
		return fmt.Errorf("%q: no bucket (s3://bucket/prefix)", shown)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("%q: the query (after '?') is not key=value pairs joined by '&' with %%-escapes: %v", shown, redactQueryError(err))
	}
	for k, vals := range q {
		if !slices.Contains(backendParams, k) {
			return fmt.Errorf("%q: unknown parameter %q (known: %s)", shown, k, strings.Join(backendParams, ", "))
		}
		if len(vals) > 1 {
			return fmt.Errorf("%q: parameter %q given %d times", shown, k, len(vals))
		}
	}
	if e := q.Get("endpoint"); e != "" {
		eu, err := url.Parse(e)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			return fmt.Errorf("%q: endpoint must be an http:// or https:// URL without credentials, not %q", shown, redact.URL(e))
		}
		b.Endpoint = e
	}
	if r := q.Get("region"); r != "" {
		b.Region = r
	}
	if ca := q.Get("ca"); ca != "" {
		if err := absPath(&b.CA, ca); err != nil {
			return fmt.Errorf("%q: ca: %w", shown, err)
		}
	}
	switch a := q.Get("addressing"); a {
	case "", "path":
	case "virtual":
		b.VirtualHost = true
	default:
		return fmt.Errorf("%q: addressing must be path or virtual, not %q", shown, redact.URL(a))
	}
	c.Backend = b
	return nil
}

// redactQueryError is err of url.ParseQuery without the text it quotes
// (a bad escape may sit inside credentials).
func redactQueryError(err error) error {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return errors.New("a '%' not followed by two hex digits")
	}
	if strings.Contains(err.Error(), "semicolon") {
		return errors.New("';' separates nothing in a URL query; use '&'")
	}
	return errors.New("malformed")
}

// redactURLError drops the URL that url.Parse quotes in its errors (it
// may hold credentials the user should not have put there).
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// readSecretsFile parses a KEY=value file of secrets. Its errors never
// quote the content.
func readSecretsFile(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vals, err := envparse.Parse(f)
	var pe *envparse.ParseError
	switch {
	case errors.As(err, &pe):
		return nil, fmt.Errorf("%s: line %d: not a KEY=value line", file, pe.Line)
	case err != nil:
		return nil, fmt.Errorf("%s: not a KEY=value file", file)
	}
	return vals, nil
}

// parseRedis checks CONTAINER_REGISTRY_REDIS: empty, or host:port[/db].
func parseRedis(c *Config, v string) error {
	c.Redis = Redis{}
	if v == "" {
		return nil
	}
	addr, db, hasDB := strings.Cut(v, "/")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q is not host:port[/db]", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", v)
	}
	r := Redis{Addr: addr}
	if hasDB {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: database must be a whole number, 0 or more", v)
		}
		r.DB = n
	}
	c.Redis = r
	return nil
}

// parseBackendCredentials checks CONTAINER_REGISTRY_BACKEND_CREDENTIALS:
// empty, or a file readable only by its owner (see ReadBackendCredentials).
func parseBackendCredentials(c *Config, v string) error {
	c.BackendCredentials = ""
	if v == "" {
		return nil
	}
	return absPath(&c.BackendCredentials, v)
}

// BackendSecrets are the credentials of the backend and redis.
type BackendSecrets struct {
	AccessKey, SecretKey, SessionToken string
	RedisPassword                      string
}

// ReadBackendCredentials reads CONTAINER_REGISTRY_BACKEND_CREDENTIALS:
// KEY=value lines (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, REDIS_PASSWORD). The file must be readable by its
// owner only (mode 0600 or stricter). No file: the zero value, and the
// storage driver takes AWS_* from the environment as the AWS SDK does.
func (c *Config) ReadBackendCredentials() (BackendSecrets, error) {
	var s BackendSecrets
	f := c.BackendCredentials
	if f == "" {
		return s, nil
	}
	st, err := os.Stat(f)
	if err != nil {
		return s, fmt.Errorf("CONTAINER_REGISTRY_BACKEND_CREDENTIALS: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return s, fmt.Errorf("CONTAINER_REGISTRY_BACKEND_CREDENTIALS: %s has mode %04o: it holds secrets, make it 0600 (chmod 600 %s)", f, st.Mode().Perm(), f)
	}
	vars, err := readSecretsFile(f)
	if err != nil {
		return s, fmt.Errorf("CONTAINER_REGISTRY_BACKEND_CREDENTIALS: %w", err)
	}
	for k := range vars {
		switch k {
		case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "REDIS_PASSWORD":
		default:
			return s, fmt.Errorf("CONTAINER_REGISTRY_BACKEND_CREDENTIALS: %s: unknown key %s (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, REDIS_PASSWORD)", f, k)
		}
	}
	s = BackendSecrets{AccessKey: vars["AWS_ACCESS_KEY_ID"], SecretKey: vars["AWS_SECRET_ACCESS_KEY"],
		SessionToken: vars["AWS_SESSION_TOKEN"], RedisPassword: vars["REDIS_PASSWORD"]}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		return s, fmt.Errorf("CONTAINER_REGISTRY_BACKEND_CREDENTIALS: %s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together", f)
	}
	return s, nil
}
