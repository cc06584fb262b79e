package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/health"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/docker/go-metrics"
	"github.com/felixge/httpsnoop"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"

	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/redisconn"
	"github.com/ocireg-tool/ocireg-tool/tasks/referrers"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
	"github.com/ocireg-tool/ocireg-tool/tasks/ui"
)

// defaultDrain is how long a graceful shutdown waits for requests in flight
// when http.draintimeout is not set.
const defaultDrain = 30 * time.Second

// Serve runs the registry in the foreground until ctx is cancelled (the
// command wires SIGTERM and SIGINT to it), then stops accepting connections
// and lets requests in flight finish for http.draintimeout (default 30s).
// The configuration is registry-config.yml as regconfig.Load makes it agree
// with c; with http.debug.addr a second server answers the debug endpoints there.
// Logs go to log, upload state tokens redacted. The process umask gains
// 022 (Serve runs in a process of its own).
func Serve(ctx context.Context, c *config.Config, log io.Writer) error {
	// distribution creates the storage tree with modes 0777 and 0666:
	// whatever the caller's umask, nothing it writes may be writable by
	// group or others.
	syscall.Umask(syscall.Umask(0) | 0o022)
	if _, err := regconfig.EnsureFile(c); err != nil {
		return err
	}
	cfg, adj, err := regconfig.Load(c)
	if err != nil {
		return err
	}
	r, err := newInstance(ctx, cfg, log, ui.New(c))
	if err != nil {
		return inFile(c.RegistryConfig(), err)
	}
	for _, a := range adj {
		r.log.Infof("configuration: %s", a)
	}
	listen := regconfig.ListenAddrs(c, cfg)
	hosts := allowedHosts(c, cfg, listen.Addrs, r.tls)
	r.log.Infof("answering for host names %s and any IP address (%s adds names)", strings.Join(hosts.list(), " "), allowedHostsVar)
	r.main = hostGate(hosts, r.log, r.main)
	// A gc of this host wakes the server with a signal rather than wait
	// for its poll: handled before the record that invites it is written.
	wake := make(chan os.Signal, 1)
	signal.Notify(wake, replica.WakeSignal)
	defer signal.Stop(wake)
	m, err := joinReplicas(ctx, c, cfg, r)
	if err != nil {
		r.app.Shutdown()
		return err
	}
	defer m.Leave()
	wctx, unwake := context.WithCancel(ctx)
	defer unwake()
	go func() {
		for {
			select {
			case <-wake:
				m.Poke()
			case <-wctx.Done():
				return
			}
		}
	}()
	r.main = m.Gate(r.main)
	if c.GCInterval > 0 {
		gctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.collectEvery(gctx, c)
		}()
		defer func() { stop(); <-done }()
		r.log.Infof("collecting garbage every %s (CONTAINER_REGISTRY_GC_INTERVAL)", c.GCInterval)
	}
	return inFile(c.RegistryConfig(), r.serve(ctx, c.RegistryConfig(), listen))
}

// inFile names file in err: a *regconfig.KeyError becomes a *regconfig.ConfigError.
func inFile(file string, err error) error {
	var ke *regconfig.KeyError
	if errors.As(err, &ke) {
		return &regconfig.ConfigError{File: file, Errs: []*regconfig.KeyError{ke}}
	}
	return err
}

// joinReplicas makes r one of the registries serving its storage (the
// replica protocol: a gc holds their writes while it sweeps, pulls go on).
// On a shared backend it first claims the redis database for the backend.
func joinReplicas(ctx context.Context, c *config.Config, cfg *configuration.Configuration, r *instance) (*replica.Member, error) {
	if regconfig.S3(cfg) {
		if err := redisconn.Claim(ctx, cfg, c.Backend.Identity()); err != nil {
			return nil, err
		}
	}
	m, err := replica.Join(ctx, r.driver, replica.ID(c.Port), c.URL, r.log, true)
	if err != nil {
		return nil, err
	}
	if regconfig.S3(cfg) {
		r.log.Infof("replica %s of shared backend %s", replica.ID(c.Port), c.Backend)
	}
	return m, nil
}

// instance is one embedded registry, built and checked, not yet listening.
type instance struct {
	cfg   *configuration.Configuration
	app   *handlers.App
	main  http.Handler // the registry API behind health and access log
	debug http.Handler // nil without http.debug.addr
	tls   *tls.Config  // nil for plain HTTP
	log   *logrus.Entry
	// driver is the application's storage driver.
	driver driver.StorageDriver
	// timeouts are the connection timeouts of both servers.
	timeouts Timeouts
}

// newInstance sets up logging from the log section, checks the files the
// configuration names and builds distribution's application with its
// health checks (in a registry of its own, so tests can build several),
// the referrers API in front of it and the registry browser site in front
// of that (nil: none).
func newInstance(ctx context.Context, cfg *configuration.Configuration, out io.Writer, site *ui.Site) (*instance, error) {
	logger, access := configureLogging(cfg, out)
	if err := checkFiles(cfg); err != nil {
		return nil, err
	}
	tlsConf, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	// One access controller for the handlers in front of the application
	// (which builds its own, alike).
	ac, err := accessController(cfg)
	if err != nil {
		return nil, err
	}
	var capture regstore.Capture
	if site != nil {
		capture.Wrap(site.Attach)
	}
	checks := health.NewRegistry()
	app, err := newApp(ctx, capture.Configure(cfg), checks)
	if err != nil {
		return nil, err
	}
	if err := capture.Check(); err != nil {
		app.Shutdown()
		return nil, err
	}
	store, err := referrers.New(ctx, capture.Driver())
	if err != nil {
		app.Shutdown()
		return nil, err
	}
	api := referrers.NewAPI(store, app, ac, regconfig.ReadOnly(cfg), logger)
	site.SetArtifacts(artifacts{store})
	h, err := site.Handler(api, ac)
	if err != nil {
		app.Shutdown()
		return nil, err
	}
	r := &instance{cfg: cfg, app: app, tls: tlsConf, log: logger, driver: capture.Driver(), timeouts: serverTimeouts()}
	r.main = healthGate(checks, h)
	if access != nil {
		r.main = accessLog(access, r.main)
	}
	if cfg.HTTP.Debug.Addr != "" {
		r.debug = debugHandler(cfg, checks)
	}
	return r, nil
}

// artifacts lists the referrers of a subject for the registry browser.
type artifacts struct{ store *referrers.Store }

func (a artifacts) Artifacts(ctx context.Context, repo string, subject digest.Digest) ([]ui.Artifact, error) {
	descs, err := a.store.All(ctx, repo, subject)
	out := make([]ui.Artifact, 0, len(descs))
	for _, d := range descs {
		out = append(out, ui.Artifact{ArtifactType: d.ArtifactType, MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Title: d.Annotations[v1.AnnotationTitle]})
	}
	return out, err
}

// serve listens on the addresses of listen (and http.debug.addr) and
// serves until ctx is cancelled or a server fails.
func (r *instance) serve(ctx context.Context, file string, listen regconfig.Listen) error {
	cfg := r.cfg
	lns, err := runstate.ListenAll(listen.Addrs)
	if err != nil {
		r.app.Shutdown()
		return fmt.Errorf("listening: %w", err)
	}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var dln net.Listener
	if r.debug != nil {
		if dln, err = net.Listen("tcp", cfg.HTTP.Debug.Addr); err != nil {
			r.app.Shutdown()
			return &regconfig.KeyError{Key: "http.debug.addr", Msg: fmt.Sprintf("listening: %v", err)}
		}
	}
	errs := make(chan error, len(lns)+1)
	srv := &http.Server{Handler: r.main, Protocols: protocols(cfg)}
	r.timeouts.apply(srv)
	for _, ln := range lns {
		if r.tls != nil {
			ln = tls.NewListener(ln, r.tls)
			r.log.Infof("listening on %s (%s), tls (minimum %s, protocols %s), config %s", ln.Addr(), listen.Why, cfg.HTTP.TLS.MinimumTLS, strings.Join(r.tls.NextProtos, ","), file)
		} else {
			r.log.Infof("listening on %s (%s), config %s", ln.Addr(), listen.Why, file)
		}
		go func() { errs <- srv.Serve(ln) }()
	}
	var dsrv *http.Server
	if dln != nil {
		dsrv = &http.Server{Handler: r.debug}
		r.timeouts.apply(dsrv)
		r.log.Infof("debug server listening on %s", dln.Addr())
		go func() { errs <- dsrv.Serve(dln) }()
	}
	runstate.NotifyListening()
	// What building the application allocated and dropped (configuration,
	// templates, the storage driver's set-up) goes back to the system now
	// rather than when the scavenger gets to it: an idle server keeps only
	// what it uses.
	go debug.FreeOSMemory()

	select {
	case err := <-errs:
		srv.Close()
		if dsrv != nil {
			dsrv.Close()
		}
		r.app.Shutdown()
		return fmt.Errorf("serving on %s: %w", strings.Join(listen.Addrs, ", "), err)
	case <-ctx.Done():
	}
	return r.shutdown(srv, dsrv)
}

// shutdown drains the registry server for http.draintimeout and closes the
// debug server.
func (r *instance) shutdown(srv, dsrv *http.Server) error {
	drain := r.cfg.HTTP.DrainTimeout
	if drain <= 0 {
		drain = defaultDrain
	}
	r.log.Infof("shutting down: draining requests in flight for up to %s", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	if dsrv != nil {
		dsrv.Close()
	}
	if appErr := r.app.Shutdown(); appErr != nil {
		err = errors.Join(err, appErr)
	}
	if err != nil {
		r.log.Warnf("shutdown: %v", err)
		return fmt.Errorf("shutting down: %w", err)
	}
	r.log.Info("stopped")
	return nil
}

// newApp builds distribution's application, turning its panics on bad
// configuration (checkConfig should have caught them) into an error, and
// registers its health checks in checks.
func newApp(ctx context.Context, cfg *configuration.Configuration, checks *health.Registry) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			app, err = nil, fmt.Errorf("invalid registry configuration: %v", r)
		}
	}()
	app = handlers.NewApp(ctx, withAuthCache(cfg))
	app.RegisterHealthChecks(checks)
	return app, nil
}

// checkFiles checks the files the configuration names that only the
// running registry needs (see checkConfig).
func checkFiles(cfg *configuration.Configuration) error {
	if p, ok := cfg.Auth["htpasswd"]; ok {
		path, _ := p["path"].(string)
		if _, err := os.Stat(path); err != nil {
			// distribution would create it with a generated password
			// printed to the log.
			return &regconfig.KeyError{Key: "auth.htpasswd.path", Msg: fmt.Sprintf("%v (start creates it)", err)}
		}
	}
	rt := cfg.Redis.TLS
	if rt.Certificate != "" {
		if _, err := tls.LoadX509KeyPair(rt.Certificate, rt.Key); err != nil {
			return &regconfig.KeyError{Key: "redis.tls.certificate", Msg: fmt.Sprintf("loading %s and key %s: %v", rt.Certificate, rt.Key, err)}
		}
	}
	for i, ca := range rt.RootCAs {
		pem, err := os.ReadFile(ca)
		if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			err = fmt.Errorf("no certificate in %s", ca)
		}
		if err != nil {
			return &regconfig.KeyError{Key: fmt.Sprintf("redis.tls.rootcas[%d]", i), Msg: err.Error()}
		}
	}
	return nil
}

// configureLogging sets up logrus, which distribution logs through, from
// the log section: level, formatter, report caller, and fields added to
// every line (distribution's own included). The access log, unless
// log.accesslog.disabled, is a logger of its own: like distribution's it
// does not depend on log.level.
func configureLogging(cfg *configuration.Configuration, out io.Writer) (*logrus.Entry, *logrus.Logger) {
	std := logrus.StandardLogger()
	std.SetOutput(out)
	level, err := logrus.ParseLevel(string(cfg.Log.Level))
	if err != nil {
		level = logrus.InfoLevel
	}
	std.SetLevel(level)
	std.SetReportCaller(cfg.Log.ReportCaller)
	formatter := logFormatter(cfg.Log.Formatter)
	std.SetFormatter(formatter)
	// Fresh hooks: distribution adds log.hooks to these in NewApp.
	std.ReplaceHooks(fieldHooks(cfg.Log.Fields))

	var access *logrus.Logger
	if !cfg.Log.AccessLog.Disabled {
		access = logrus.New()
		access.SetOutput(out)
		access.SetFormatter(formatter)
		access.ReplaceHooks(fieldHooks(cfg.Log.Fields))
	}
	return logrus.NewEntry(std), access
}

// logFormatter returns the formatter log.formatter names (checked by
// checkConfig), as distribution sets them up.
func logFormatter(name string) logrus.Formatter {
	switch name {
	case "json":
		return &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano, DisableHTMLEscape: true}
	case "logstash":
		return &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano, FieldMap: logrus.FieldMap{logrus.FieldKeyFunc: "function"}}
	default:
		return &logrus.TextFormatter{TimestampFormat: time.RFC3339Nano, DisableColors: true, FullTimestamp: true}
	}
}

// fieldHooks redacts upload state tokens from every entry and adds
// log.fields to every entry that does not set them itself.
func fieldHooks(fields map[string]any) logrus.LevelHooks {
	hooks := logrus.LevelHooks{}
	hooks.Add(redactHook{})
	if len(fields) > 0 {
		hooks.Add(fieldsHook(fields))
	}
	return hooks
}

// stateRe matches the upload state of a blob upload URL (the _state query
// parameter): an HMAC-signed token that lets its holder go on with the
// upload. distribution logs the request URI of every request.
var stateRe = regexp.MustCompile(`_state=[^&\s"']*`)

// redactHook replaces upload state tokens in an entry's message and
// fields with "_state=REDACTED".
type redactHook struct{}

func (redactHook) Levels() []logrus.Level { return logrus.AllLevels }

func (redactHook) Fire(e *logrus.Entry) error {
	e.Message = redactState(e.Message)
	for k, v := range e.Data {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		default:
			continue
		}
		if r := redactState(s); r != s {
			e.Data[k] = r
		}
	}
	return nil
}

// redactState replaces the value of every _state parameter in s.
func redactState(s string) string {
	if !strings.Contains(s, "_state=") {
		return s
	}
	return stateRe.ReplaceAllString(s, "_state=REDACTED")
}

type fieldsHook map[string]any

func (fieldsHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h fieldsHook) Fire(e *logrus.Entry) error {
	if e.Data == nil {
		e.Data = logrus.Fields{}
	}
	for k, v := range h {
		if _, ok := e.Data[k]; !ok {
			e.Data[k] = v
		}
	}
	return nil
}

// defaultCipherSuites are distribution's defaults for TLS 1.2 (TLS 1.3
// suites are not configurable).
var defaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
}

// serverTLS builds the TLS configuration from http.tls (checked by
// checkConfig), or returns nil for plain HTTP: minimum version, cipher
// suites (distribution's defaults when none are listed) and HTTP/2 unless
// http.http2.disabled.
func serverTLS(cfg *configuration.Configuration) (*tls.Config, error) {
	t := cfg.HTTP.TLS
	if t.Certificate == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
	if err != nil {
		return nil, &regconfig.KeyError{Key: "http.tls.certificate", Msg: fmt.Sprintf("loading %s and key %s: %v", t.Certificate, t.Key, err)}
	}
	conf := &tls.Config{
		MinVersion:   regconfig.TLSVersions[strings.ToLower(t.MinimumTLS)],
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if cfg.HTTP.HTTP2.Disabled {
		conf.NextProtos = []string{"http/1.1"}
	}
	if conf.MinVersion < tls.VersionTLS13 {
		conf.CipherSuites = defaultCipherSuites
		if len(t.CipherSuites) > 0 {
			conf.CipherSuites = nil
			for _, name := range t.CipherSuites {
				id, _ := regconfig.CipherSuite(name)
				conf.CipherSuites = append(conf.CipherSuites, id)
			}
		}
	}
	return conf, nil
}

// protocols is nil (HTTP/1.1, and HTTP/2 over TLS as negotiated) unless
// http.h2c.enabled adds HTTP/2 without TLS.
func protocols(cfg *configuration.Configuration) *http.Protocols {
	if !cfg.HTTP.H2C.Enabled {
		return nil
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(!cfg.HTTP.HTTP2.Disabled)
	p.SetUnencryptedHTTP2(true)
	return p
}

// healthGate answers 503 while a health check fails, as distribution's
// health.Handler does for its global registry.
func healthGate(checks *health.Registry, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(checks.CheckStatus(r.Context())) != 0 {
			_ = errcode.ServeJSON(w, errcode.ErrorCodeUnavailable.WithDetail("health check failed: please see /debug/health"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// debugHandler serves what distribution's debug server does: /debug/health,
// /debug/vars, /debug/pprof/ and, with http.debug.prometheus.enabled, the
// metrics at http.debug.prometheus.path (default /metrics).
func debugHandler(cfg *configuration.Configuration, checks *health.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/health", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		failed := checks.CheckStatus(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if len(failed) != 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(failed)
	})
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	prom := cfg.HTTP.Debug.Prometheus
	if !prom.Enabled {
		return mux
	}
	path := prom.Path
	if path == "" {
		path = "/metrics"
	}
	metricsHandler := metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			metricsHandler.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// accessLog logs one line per request: method, path (without the query,
// which may carry upload state), status, size, duration, remote address and
// the user name of basic auth. Credentials and headers are never logged.
func accessLog(logger *logrus.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := httpsnoop.CaptureMetrics(next, w, r)
		user := "-"
		if u, _, ok := r.BasicAuth(); ok && u != "" {
			user = u
		}
		logger.WithFields(logrus.Fields{
			"remote":   r.RemoteAddr,
			"user":     user,
			"method":   r.Method,
			"path":     r.URL.Path,
			"status":   m.Code,
			"bytes":    m.Written,
			"duration": m.Duration.Round(time.Microsecond).String(),
		}).Info("access")
	})
}
