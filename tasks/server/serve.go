package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/health"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/felixge/httpsnoop"
	"github.com/ocireg-tool/ocireg-tool/generator/config"
	"github.com/sirupsen/logrus"

	// Auth and storage back ends a registry-config.yml may name.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// defaultDrain is how long a graceful shutdown waits for requests in flight
// when http.draintimeout is not set.
const defaultDrain = 30 * time.Second

// Serve runs the registry in the foreground until ctx is cancelled (the
// command wires SIGTERM and SIGINT to it), then stops accepting connections
// and lets requests in flight finish for http.draintimeout (default 30s).
// The configuration is registry-config.yml as LoadConfig makes it agree with
// c. Logs go to log.
func Serve(ctx context.Context, c *config.Config, log io.Writer) error {
	if _, err := EnsureConfigFile(c); err != nil {
		return err
	}
	cfg, adj, err := LoadConfig(c)
	if err != nil {
		return err
	}
	logger, err := configureLogging(cfg, log)
	if err != nil {
		return fmt.Errorf("%s: %w", c.RegistryConfig(), err)
	}
	for _, a := range adj {
		logger.Infof("configuration: %s", a)
	}

	tlsConf, err := serverTLS(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", c.RegistryConfig(), err)
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.HTTP.Addr, err)
	}
	defer ln.Close()

	app, err := newApp(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", c.RegistryConfig(), err)
	}
	var handler http.Handler = app
	handler = health.Handler(handler)
	if !cfg.Log.AccessLog.Disabled {
		handler = accessLog(logger, handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          nil,
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		logger.Infof("listening on %s, tls (minimum %s), config %s", ln.Addr(), cfg.HTTP.TLS.MinimumTLS, c.RegistryConfig())
	} else {
		logger.Infof("listening on %s, config %s", ln.Addr(), c.RegistryConfig())
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		app.Shutdown()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving on %s: %w", cfg.HTTP.Addr, err)
	case <-ctx.Done():
	}
	drain := cfg.HTTP.DrainTimeout
	if drain <= 0 {
		drain = defaultDrain
	}
	logger.Infof("shutting down: draining requests in flight for up to %s", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err = srv.Shutdown(sctx)
	if appErr := app.Shutdown(); appErr != nil {
		err = errors.Join(err, appErr)
	}
	if err != nil {
		logger.Warnf("shutdown: %v", err)
		return fmt.Errorf("shutting down: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// newApp builds distribution's application, turning its panics on bad
// configuration into an error, and registers the health checks (global
// state: once per process).
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			app, err = nil, fmt.Errorf("invalid registry configuration: %v", r)
		}
	}()
	app = handlers.NewApp(ctx, cfg)
	app.RegisterHealthChecks()
	return app, nil
}

// configureLogging sets up logrus, which distribution logs through, from the
// log section.
func configureLogging(cfg *configuration.Configuration, out io.Writer) (*logrus.Entry, error) {
	logrus.SetOutput(out)
	level, err := logrus.ParseLevel(string(cfg.Log.Level))
	if err != nil {
		level = logrus.InfoLevel
	}
	logrus.SetLevel(level)
	logrus.SetReportCaller(cfg.Log.ReportCaller)
	switch cfg.Log.Formatter {
	case "", "text":
		logrus.SetFormatter(&logrus.TextFormatter{TimestampFormat: time.RFC3339Nano, DisableColors: true, FullTimestamp: true})
	case "json", "logstash":
		logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano, DisableHTMLEscape: true})
	default:
		return nil, fmt.Errorf("log.formatter %q is not supported (text, json, logstash)", cfg.Log.Formatter)
	}
	fields := logrus.Fields{}
	for k, v := range cfg.Log.Fields {
		fields[k] = v
	}
	return logrus.WithFields(fields), nil
}

var tlsVersions = map[string]uint16{
	"tls1.2": tls.VersionTLS12,
	"tls1.3": tls.VersionTLS13,
}

// serverTLS builds the TLS configuration from http.tls, or returns nil for
// plain HTTP. TLS 1.2 is the floor whatever the file says.
func serverTLS(cfg *configuration.Configuration) (*tls.Config, error) {
	t := cfg.HTTP.TLS
	if t.LetsEncrypt.CacheFile != "" {
		return nil, fmt.Errorf("http.tls.letsencrypt is not supported by the local registry; use certificate and key")
	}
	if t.Certificate == "" {
		return nil, nil
	}
	minVersion, ok := tlsVersions[strings.ToLower(t.MinimumTLS)]
	if !ok {
		minVersion = tls.VersionTLS12
	}
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", t.Certificate, t.Key, err)
	}
	if len(t.ClientCAs) > 0 {
		return nil, fmt.Errorf("http.tls.clientcas is not supported by the local registry")
	}
	return &tls.Config{
		MinVersion:   minVersion,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// accessLog logs one line per request: method, path (without the query,
// which may carry upload state), status, size, duration, remote address and
// the user name of basic auth. Credentials and headers are never logged.
func accessLog(logger *logrus.Entry, next http.Handler) http.Handler {
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
