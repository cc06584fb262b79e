package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/distribution/distribution/v3/health"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
)

// syncBuffer is a log destination that the registry's goroutines and the
// test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is an instance served on a loopback port by the test.
type running struct {
	*instance
	host   string // 127.0.0.1:port
	base   string // scheme://host
	log    *syncBuffer
	client *http.Client // trusts the CA in secure mode; does not follow redirects
}

// startInstance loads c's registry-config.yml, builds the registry and
// serves it (over TLS in secure mode, creating the PKI) until the test ends.
func startInstance(t *testing.T, c *config.Config) *running {
	t.Helper()
	if c.Secure {
		if _, err := generator.EnsureSecrets(c, time.Now(), generator.AtGenerate); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _, err := regconfig.Load(c)
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	inst, err := newInstance(ctx, cfg, buf, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{instance: inst, host: ln.Addr().String(), base: "http://" + ln.Addr().String(), log: buf}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if inst.tls != nil {
		ln = tls.NewListener(ln, inst.tls)
		r.base = "https://" + r.host
		tr.TLSClientConfig = &tls.Config{RootCAs: caPool(t, c)}
	}
	r.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	srv := &http.Server{Handler: inst.main, Protocols: protocols(cfg)}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		inst.app.Shutdown()
		cancel()
	})
	return r
}

func caPool(t *testing.T, c *config.Config) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(c.CACert())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// push writes a random image as repo:tag.
func (r *running) push(t *testing.T, repoTag string) (v1.Image, error) {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return img, remote.Write(ref, img, remote.WithTransport(r.client.Transport))
}

func (r *running) mustPush(t *testing.T, repoTag string) v1.Image {
	t.Helper()
	img, err := r.push(t, repoTag)
	if err != nil {
		t.Fatalf("pushing %s: %v", repoTag, err)
	}
	return img
}

// do sends a request and returns the response with its body read.
func (r *running) do(t *testing.T, method, path string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func layerDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("layers: %v", err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func imageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// jsonLines decodes every line of a JSON log.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// log.level, log.formatter, log.fields and log.accesslog.disabled.
func TestServeLogging(t *testing.T) {
	t.Run("error level, json, fields, access log", func(t *testing.T) {
		r := startInstance(t, testcfg.WithYAML(t, nil, "log:\n  level: error\n  formatter: json\n  fields: {service: svc-x, site: lab}\n"))
		r.do(t, "GET", "/v2/", nil)
		access := 0
		for _, m := range jsonLines(t, r.log.String()) {
			if m["service"] != "svc-x" || m["site"] != "lab" {
				t.Errorf("line without log.fields: %v", m)
			}
			switch {
			case m["msg"] == "access":
				access++
			case m["level"] != "error":
				t.Errorf("%s line at log.level error: %v", m["level"], m)
			}
		}
		if access != 1 {
			t.Errorf("%d access lines, want 1 (the access log does not depend on log.level):\n%s", access, r.log)
		}
	})
	t.Run("debug level, logstash, no access log", func(t *testing.T) {
		r := startInstance(t, testcfg.WithYAML(t, nil, "log:\n  level: debug\n  formatter: logstash\n  accesslog: {disabled: true}\n  fields: {service: svc-y}\n"))
		r.do(t, "GET", "/v2/", nil)
		debug := false
		for _, m := range jsonLines(t, r.log.String()) {
			if m["msg"] == "access" {
				t.Errorf("access line with log.accesslog.disabled: %v", m)
			}
			if m["service"] != "svc-y" {
				t.Errorf("line without log.fields: %v", m)
			}
			debug = debug || m["level"] == "debug"
		}
		if !debug {
			t.Errorf("no debug line at log.level debug:\n%s", r.log)
		}
	})
	t.Run("text", func(t *testing.T) {
		r := startInstance(t, testcfg.WithYAML(t, nil, "log:\n  formatter: text\n  fields: {service: svc-z}\n"))
		r.do(t, "GET", "/v2/", nil)
		out := r.log.String()
		if !strings.Contains(out, "msg=access") || !strings.Contains(out, "service=svc-z") || strings.Contains(out, "level=debug") {
			t.Errorf("text log:\n%s", out)
		}
	})
}

// storage.delete.enabled, storage.maintenance.readonly and uploadpurging,
// policy.repository.classes.
func TestServeStorageKeys(t *testing.T) {
	const purge = "Starting upload purge in"
	cases := []struct {
		name      string
		yml       string
		push      bool // pushing succeeds
		delete    int  // status of deleting the pushed manifest
		purgeLogs bool
	}{
		{"defaults", "", true, http.StatusMethodNotAllowed, true},
		{"delete enabled", "storage:\n  inmemory:\n  delete: {enabled: true}\n", true, http.StatusAccepted, true},
		{"read-only", "storage:\n  inmemory:\n  maintenance:\n    readonly: {enabled: true}\n", false, 0, true},
		{"no upload purging", "storage:\n  inmemory:\n  maintenance:\n    uploadpurging: {enabled: false}\n", true, http.StatusMethodNotAllowed, false},
		{"policy", "policy:\n  repository: {classes: [plugin]}\n", false, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startInstance(t, testcfg.WithYAML(t, nil, tc.yml))
			img, err := r.push(t, "app:1")
			if (err == nil) != tc.push {
				t.Fatalf("push: %v, want success %v", err, tc.push)
			}
			if tc.push {
				if resp, body := r.do(t, "DELETE", "/v2/app/manifests/"+imageDigest(t, img), nil); resp.StatusCode != tc.delete {
					t.Errorf("delete: %s %s, want %d", resp.Status, body, tc.delete)
				}
			}
			if got := strings.Contains(r.log.String(), purge); got != tc.purgeLogs {
				t.Errorf("upload purger started: %v, want %v", got, tc.purgeLogs)
			}
		})
	}
}

// storage.cache.blobdescriptor: redis keeps blob descriptors in redis.addrs.
func TestServeRedisCache(t *testing.T) {
	mr := miniredis.RunT(t)
	r := startInstance(t, testcfg.WithYAML(t, nil, fmt.Sprintf("storage:\n  inmemory:\n  cache: {blobdescriptor: redis}\nredis:\n  addrs: [%q]\n", mr.Addr())))
	img := r.mustPush(t, "app:1")
	layer := layerDigest(t, img)
	if resp, _ := r.do(t, "HEAD", "/v2/app/blobs/"+layer, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD blob: %s", resp.Status)
	}
	if !mr.Exists("blobs::" + layer) {
		t.Errorf("redis has no descriptor of %s; keys: %v", layer, mr.Keys())
	}
}

// middleware.storage redirect sends blob downloads to its baseurl, unless
// storage.redirect.disable.
func TestServeRedirectMiddleware(t *testing.T) {
	mw := "middleware:\n  storage:\n    - name: redirect\n      options: {baseurl: 'https://cdn.example.com/mirror'}\n"
	r := startInstance(t, testcfg.WithYAML(t, nil, mw))
	layer := layerDigest(t, r.mustPush(t, "app:1"))
	resp, _ := r.do(t, "GET", "/v2/app/blobs/"+layer, nil)
	want := "https://cdn.example.com/mirror/docker/registry/v2/blobs/sha256/" + layer[7:9] + "/" + layer[7:] + "/data"
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
		t.Errorf("blob: %s, Location %q, want 307 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	r = startInstance(t, testcfg.WithYAML(t, nil, mw+"storage:\n  inmemory:\n  redirect: {disable: true}\n"))
	layer = layerDigest(t, r.mustPush(t, "app:1"))
	if resp, _ := r.do(t, "GET", "/v2/app/blobs/"+layer, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("blob with redirects disabled: %s", resp.Status)
	}
}

// http.headers, http.host and http.relativeurls.
func TestServeHTTPKeys(t *testing.T) {
	r := startInstance(t, testcfg.WithYAML(t, nil, "http:\n  host: https://registry.example.com:5000\n  headers:\n    X-Frame-Options: [DENY]\n"))
	resp, _ := r.do(t, "POST", "/v2/app/blobs/uploads/", nil)
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("http.headers: X-Frame-Options %q", resp.Header.Get("X-Frame-Options"))
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://registry.example.com:5000/v2/app/blobs/uploads/") {
		t.Errorf("http.host: Location %q", loc)
	}

	r = startInstance(t, testcfg.WithYAML(t, nil, "http:\n  relativeurls: true\n"))
	resp, _ = r.do(t, "POST", "/v2/app/blobs/uploads/", nil)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/v2/app/blobs/uploads/") {
		t.Errorf("http.relativeurls: Location %q", loc)
	}
}

// catalog.maxentries and tags.maxtags.
func TestServeListLimits(t *testing.T) {
	r := startInstance(t, testcfg.WithYAML(t, nil, "catalog: {maxentries: 1}\ntags: {maxtags: 1}\n"))
	r.mustPush(t, "app:1")
	r.mustPush(t, "app:2")
	resp, body := r.do(t, "GET", "/v2/app/tags/list?n=5", nil)
	var tags struct{ Tags []string }
	if err := json.Unmarshal([]byte(body), &tags); err != nil || len(tags.Tags) != 1 || resp.Header.Get("Link") == "" {
		t.Errorf("tags with maxtags 1: %s %s, Link %q", resp.Status, body, resp.Header.Get("Link"))
	}
	if resp, body := r.do(t, "GET", "/v2/_catalog?n=5", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("catalog beyond maxentries: %s %s", resp.Status, body)
	}
}

// validation.manifests.indexes.platforms: none accepts an index whose
// images are missing; the default refuses it.
func TestServeIndexValidation(t *testing.T) {
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":100,` +
		`"digest":"sha256:` + strings.Repeat("ab", 32) + `","platform":{"architecture":"arm64","os":"linux"}}]}`
	for _, tc := range []struct {
		yml  string
		want int
	}{
		{"", http.StatusBadRequest},
		{"validation:\n  manifests:\n    indexes: {platforms: none}\n", http.StatusCreated},
	} {
		r := startInstance(t, testcfg.WithYAML(t, nil, tc.yml))
		resp, body := r.do(t, "PUT", "/v2/app/manifests/multi", strings.NewReader(index), "Content-Type", "application/vnd.oci.image.index.v1+json")
		if resp.StatusCode != tc.want {
			t.Errorf("%q: %s %s, want %d", tc.yml, resp.Status, body, tc.want)
		}
	}
}

// notifications: pushes reach an enabled endpoint with its headers, ignored
// actions and disabled endpoints get nothing.
func TestServeNotifications(t *testing.T) {
	type delivery struct {
		auth   string
		events []struct {
			Action string
			Target struct{ Repository, Tag string }
		}
	}
	receiver := func() (*httptest.Server, chan delivery) {
		ch := make(chan delivery, 100)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var d delivery
			var env struct {
				Events []struct {
					Action string
					Target struct{ Repository, Tag string }
				}
			}
			_ = json.NewDecoder(r.Body).Decode(&env)
			d.auth, d.events = r.Header.Get("Authorization"), env.Events
			ch <- d
		}))
		t.Cleanup(srv.Close)
		return srv, ch
	}
	on, onCh := receiver()
	off, offCh := receiver()
	r := startInstance(t, testcfg.WithYAML(t, nil, fmt.Sprintf(`notifications:
  endpoints:
    - name: ci
      url: %s/events
      headers: {Authorization: [Bearer t0ken]}
      timeout: 2s
      ignore: {actions: [pull]}
    - name: off
      disabled: true
      url: %s/events
`, on.URL, off.URL)))
	img := r.mustPush(t, "app:1")
	r.do(t, "GET", "/v2/app/manifests/1", nil, "Accept", "application/vnd.docker.distribution.manifest.v2+json")
	r.do(t, "GET", "/v2/app/blobs/"+layerDigest(t, img), nil)

	pushed := false
	deadline := time.After(10 * time.Second)
	for !pushed {
		select {
		case d := <-onCh:
			if d.auth != "Bearer t0ken" {
				t.Errorf("endpoint headers not sent: Authorization %q", d.auth)
			}
			for _, e := range d.events {
				if e.Action == "pull" {
					t.Errorf("ignored action delivered: %+v", e)
				}
				pushed = pushed || (e.Action == "push" && e.Target.Repository == "app" && e.Target.Tag == "1")
			}
		case <-deadline:
			t.Fatal("no push event for app:1 within 10s")
		}
	}
	select {
	case d := <-offCh:
		t.Errorf("disabled endpoint got %+v", d)
	case <-time.After(300 * time.Millisecond):
	}
}

// health.file: the registry answers 503 while the file exists.
func TestServeHealthFile(t *testing.T) {
	down := filepath.Join(t.TempDir(), "down")
	r := startInstance(t, testcfg.WithYAML(t, nil, fmt.Sprintf("health:\n  file:\n    - file: %q\n      interval: 20ms\n", down)))
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, body := r.do(t, "GET", "/v2/", nil)
			if resp.StatusCode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/v2/: %s %s, want %d", resp.Status, body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus(http.StatusOK)
	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus(http.StatusServiceUnavailable)
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	waitStatus(http.StatusOK)
}

// The debug server's endpoints, and the metrics path with
// http.debug.prometheus (the registry's own metrics are checked end to
// end: distribution registers them once per process).
func TestServeDebugHandler(t *testing.T) {
	checks := health.NewRegistry()
	checks.RegisterFunc("disk", func(context.Context) error { return errors.New("full") })
	c := testcfg.WithYAML(t, nil, "http:\n  debug:\n    addr: 127.0.0.1:0\n    prometheus: {enabled: true, path: /m}\n")
	cfg, _, err := regconfig.Load(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(debugHandler(cfg, checks))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/m", "go_goroutines", 200},
		{"/metrics", "", 404},
		{"/debug/vars", `"memstats"`, 200},
		{"/debug/pprof/", "goroutine", 200},
		{"/debug/health", `"disk":"full"`, 503},
	} {
		if code, body := get(tc.path); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %.200q, want %d with %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

// http.tls.minimumtls, http.tls.ciphersuites (and distribution's default
// suites), http.http2.disabled.
func TestServeTLSKeys(t *testing.T) {
	handshake := func(r *running, c *config.Config, maxVersion uint16, suite uint16) (*tls.ConnectionState, error) {
		conf := &tls.Config{RootCAs: caPool(t, c), ServerName: "127.0.0.1", MaxVersion: maxVersion}
		if suite != 0 {
			conf.CipherSuites = []uint16{suite}
		}
		conn, err := tls.Dial("tcp", r.host, conf)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return &st, nil
	}

	c := testcfg.WithYAML(t, testcfg.Secure, "http:\n  tls:\n    minimumtls: tls1.3\n")
	r := startInstance(t, c)
	if _, err := handshake(r, c, tls.VersionTLS12, 0); err == nil {
		t.Errorf("TLS 1.2 client accepted with minimumtls tls1.3")
	}
	if st, err := handshake(r, c, 0, 0); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3 client: %v", err)
	}

	c = testcfg.WithYAML(t, testcfg.Secure, "http:\n  tls:\n    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n")
	r = startInstance(t, c)
	if _, err := handshake(r, c, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384); err == nil {
		t.Errorf("unlisted suite accepted")
	}
	if st, err := handshake(r, c, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Errorf("listed suite: %v", err)
	}

	c = testcfg.WithYAML(t, testcfg.Secure, "")
	r = startInstance(t, c)
	if _, err := handshake(r, c, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA); err == nil {
		t.Errorf("suite outside distribution's defaults accepted")
	}
	r.client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	if resp, _ := r.do(t, "GET", "/v2/", nil); resp.ProtoMajor != 2 {
		t.Errorf("HTTP/2 not negotiated by default: %s", resp.Proto)
	}

	c = testcfg.WithYAML(t, testcfg.Secure, "http:\n  http2: {disabled: true}\n")
	r = startInstance(t, c)
	r.client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	if resp, _ := r.do(t, "GET", "/v2/", nil); resp.ProtoMajor != 1 {
		t.Errorf("http2.disabled: %s", resp.Proto)
	}
}

// http.h2c.enabled serves HTTP/2 without TLS.
func TestServeH2C(t *testing.T) {
	h2c := func(r *running) (*http.Response, error) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		return (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(r.base + "/v2/")
	}
	r := startInstance(t, testcfg.WithYAML(t, nil, "http:\n  h2c: {enabled: true}\n"))
	resp, err := h2c(r)
	if err != nil || resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("h2c request: %v %v", resp, err)
	}
	resp.Body.Close()
	r = startInstance(t, testcfg.WithYAML(t, nil, ""))
	if resp, err := h2c(r); err == nil {
		resp.Body.Close()
		t.Errorf("h2c answered without http.h2c.enabled: %s", resp.Proto)
	}
}

// log.hooks: a mail hook sends a mail for each line at its levels.
func TestServeMailHook(t *testing.T) {
	smtp := fakeSMTP(t)
	startInstance(t, testcfg.WithYAML(t, nil, fmt.Sprintf(`log:
  hooks:
    - type: mail
      levels: [error]
      options:
        smtp: {addr: %q, username: reg, password: pw}
        from: registry@example.com
        to: [ops@example.com]
`, smtp.addr)))
	defer logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	logrus.Warn("not mailed")
	logrus.Error("disk on fire")
	select {
	case mail := <-smtp.mails:
		if !strings.Contains(mail, "Subject: [error] 127.0.0.1: disk on fire") || !strings.Contains(mail, "To:ops@example.com") {
			t.Errorf("mail:\n%s", mail)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no mail")
	}
	select {
	case mail := <-smtp.mails:
		t.Errorf("second mail:\n%s", mail)
	default:
	}
}

type smtpServer struct {
	addr  string
	mails chan string
}

// fakeSMTP accepts mail on a loopback port (PLAIN auth, no TLS) and hands
// each message over on mails.
func fakeSMTP(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{addr: ln.Addr().String(), mails: make(chan string, 10)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.session(conn)
		}
	}()
	return s
}

func (s *smtpServer) session(conn net.Conn) {
	defer conn.Close()
	in := bufio.NewReader(conn)
	say := func(line string) { fmt.Fprintf(conn, "%s\r\n", line) }
	say("220 fake")
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
		case "EHLO", "HELO":
			say("250-fake")
			say("250 AUTH PLAIN")
		case "AUTH":
			say("235 ok")
		case "DATA":
			say("354 go on")
			var mail strings.Builder
			for {
				l, err := in.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				mail.WriteString(l)
			}
			s.mails <- mail.String()
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// Serve itself: the registry over TLS and the debug server on
// http.debug.addr, both closed when ctx ends.
func TestServeRuns(t *testing.T) {
	debugAddr := "127.0.0.1:" + testcfg.FreePort(t)
	c := testcfg.WithYAML(t, testcfg.Secure, fmt.Sprintf("http:\n  draintimeout: 1s\n  debug: {addr: %q}\n", debugAddr))
	if _, err := generator.EnsureSecrets(c, time.Now(), generator.AtGenerate); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, c, buf) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, c)}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("https://" + c.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Serve returned: %v\n%s", err, buf)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer: %v\n%s", err, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + debugAddr + "/debug/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{}" {
		t.Errorf("debug health: %s %s", resp.Status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + debugAddr + "/debug/health"); err == nil {
		t.Errorf("debug server still answers after shutdown")
	}
}

// Files and addresses only the running registry needs are checked by
// Serve, with the key named.
func TestServeRejects(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name string
		vars config.Vars
		yml  string
		pki  bool
		key  string
	}{
		{"no certificate", testcfg.Secure, "", false, "http.tls.certificate"},
		{"no htpasswd file", config.Vars{"CONTAINER_REGISTRY_SECURE": "1"}, "", true, "auth.htpasswd.path"},
		{"debug port busy", nil, fmt.Sprintf("http:\n  debug: {addr: %q}\n", busy.Addr()), false, "http.debug.addr"},
		{"redis CA", nil, "redis:\n  addrs: [127.0.0.1:1]\n  tls: {rootcas: [/nonexistent/ca.pem]}\n", false, "redis.tls.rootcas[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testcfg.WithYAML(t, tc.vars, tc.yml)
			if tc.pki {
				if _, err := generator.EnsureSecrets(c, time.Now(), generator.AtGenerate); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := Serve(ctx, c, io.Discard)
			var ce *regconfig.ConfigError
			if !errors.As(err, &ce) || len(ce.Errs) != 1 || ce.Errs[0].Key != tc.key || ce.File != c.RegistryConfig() {
				t.Fatalf("want a regconfig.ConfigError for %s, got %v", tc.key, err)
			}
			t.Log(err)
		})
	}
}
