package regconfig

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
)

// Every key the embedded registry cannot honour is refused by Load,
// which start, serve, gc and verify all call, with the key named.
func TestCheckConfigRejects(t *testing.T) {
	cases := []struct {
		name string
		vars config.Vars
		yml  string
		key  string // the KeyError's key
		msg  string // part of its message
	}{
		{"azure", nil, "storage:\n  azure:\n    accountname: a\n", "storage.azure", "driver not compiled into ocireg-tool (available: filesystem, inmemory, s3, s3aws)"},
		{"s3 without bucket", nil, "storage:\n  s3:\n    region: eu-west-1\n", "storage.s3", "bucket"},
		{"filesystem params", nil, "storage:\n  filesystem:\n    maxthreads: lots\n", "storage.filesystem", "maxthreads"},
		{"delete not bool", nil, "storage:\n  inmemory:\n  delete:\n    enabled: sometimes\n", "storage.delete.enabled", "true or false"},
		{"redirect without disable", nil, "storage:\n  inmemory:\n  redirect:\n    disabled: true\n", "storage.redirect.disable", "true or false"},
		{"tag limit", nil, "storage:\n  inmemory:\n  tag:\n    concurrencylimit: -1\n", "storage.tag.concurrencylimit", "0 or more"},
		{"redis cache without redis", nil, "storage:\n  inmemory:\n  cache:\n    blobdescriptor: redis\n", "storage.cache.blobdescriptor", "redis.addrs"},
		{"unknown cache", nil, "storage:\n  inmemory:\n  cache:\n    blobdescriptor: memcached\n", "storage.cache.blobdescriptor", "not a cache"},
		{"cache size", nil, "storage:\n  inmemory:\n  cache:\n    blobdescriptor: inmemory\n    blobdescriptorsize: big\n", "storage.cache.blobdescriptorsize", "whole number"},
		{"purge age", nil, "storage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 3\n      interval: 1h\n      dryrun: false\n", "storage.maintenance.uploadpurging.age", "duration"},
		{"purge interval", nil, "storage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      enabled: true\n      age: 1h\n      interval: 0s\n      dryrun: false\n", "storage.maintenance.uploadpurging.interval", "positive"},
		{"purge dryrun", nil, "storage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      age: 1h\n      interval: 1h\n", "storage.maintenance.uploadpurging.dryrun", "true or false"},
		{"readonly", nil, "storage:\n  inmemory:\n  maintenance:\n    readonly:\n      enabled: please\n", "storage.maintenance.readonly.enabled", "true or false"},
		{"token auth", nil, "auth:\n  token:\n    realm: r\n", "auth.token", "auth type not compiled into ocireg-tool (available: htpasswd, none)"},
		{"silly auth with auth on", config.Vars{"CONTAINER_REGISTRY_SECURE": "1"}, "auth:\n  silly:\n    realm: r\n", "auth.silly", "not compiled"},
		{"htpasswd realm", config.Vars{"CONTAINER_REGISTRY_SECURE": "1"}, "auth:\n  htpasswd:\n    path: /x\n", "auth.htpasswd.realm", "required"},
		{"cloudfront", nil, "middleware:\n  storage:\n    - name: cloudfront\n      options:\n        baseurl: https://d.example.com/\n", "middleware.storage[0]", `storage middleware "cloudfront" not compiled into ocireg-tool (available: redirect)`},
		{"rewrite", nil, "middleware:\n  storage:\n    - name: rewrite\n", "middleware.storage[0]", "not compiled"},
		{"redirect options", nil, "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: /relative\n", "middleware.storage[0]", "redirect: no scheme"},
		{"registry middleware", nil, "middleware:\n  registry:\n    - name: mine\n", "middleware.registry[0]", "not compiled"},
		{"repository middleware", nil, "middleware:\n  repository:\n    - name: mine\n", "middleware.repository[0]", "not compiled"},
		{"middleware hook", nil, "middleware:\n  blobs:\n    - name: mine\n", "middleware.blobs", "not a middleware hook"},
		{"unix socket", nil, "http:\n  net: unix\n  addr: /tmp/sock\n", "http.net", "not supported"},
		{"prefix", nil, "http:\n  prefix: /registry/\n", "http.prefix", "/v2/"},
		{"host", nil, "http:\n  host: registry.example.com\n", "http.host", "URL"},
		{"letsencrypt", testcfg.Secure, "http:\n  tls:\n    letsencrypt:\n      cachefile: /tmp/le\n", "http.tls.letsencrypt", "not supported"},
		{"clientcas", testcfg.Secure, "http:\n  tls:\n    clientcas: [/etc/ca.pem]\n", "http.tls.clientcas", "client certificates"},
		{"tls1.0", testcfg.Secure, "http:\n  tls:\n    minimumtls: tls1.0\n", "http.tls.minimumtls", "below"},
		{"tls garbage", testcfg.Secure, "http:\n  tls:\n    minimumtls: ssl3\n", "http.tls.minimumtls", "not a TLS version"},
		{"suites with 1.3", testcfg.Secure, "http:\n  tls:\n    minimumtls: tls1.3\n    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n", "http.tls.ciphersuites", "not configurable"},
		{"insecure suite", testcfg.Secure, "http:\n  tls:\n    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_RC4_128_SHA]\n", "http.tls.ciphersuites[1]", "insecure"},
		{"CBC suite", testcfg.Secure, "http:\n  tls:\n    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]\n", "http.tls.ciphersuites[1]", "not an AEAD suite"},
		{"CBC SHA256 suite", testcfg.Secure, "http:\n  tls:\n    ciphersuites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256]\n", "http.tls.ciphersuites[0]", "insecure"},
		{"TLS 1.3 suite", testcfg.Secure, "http:\n  tls:\n    ciphersuites: [TLS_AES_128_GCM_SHA256]\n", "http.tls.ciphersuites[0]", "TLS 1.3 suite"},
		{"unknown suite", testcfg.Secure, "http:\n  tls:\n    ciphersuites: [TLS_FAST]\n", "http.tls.ciphersuites[0]", "not a TLS cipher suite"},
		{"debug addr", nil, "http:\n  debug:\n    addr: debug\n", "http.debug.addr", "host:port"},
		{"prometheus without debug", nil, "http:\n  debug:\n    prometheus:\n      enabled: true\n", "http.debug.prometheus.enabled", "http.debug.addr"},
		{"prometheus path", nil, "http:\n  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n      path: metrics\n", "http.debug.prometheus.path", "start with /"},
		{"notification url", nil, "notifications:\n  endpoints:\n    - name: ci\n      url: ftp://ci.example.com/\n", "notifications.endpoints[0].url", "http or https"},
		{"notification name", nil, "notifications:\n  endpoints:\n    - url: https://ci.example.com/\n", "notifications.endpoints[0].name", "required"},
		{"notification action", nil, "notifications:\n  endpoints:\n    - name: ci\n      url: https://ci.example.com/\n      ignore:\n        actions: [pul]\n", "notifications.endpoints[0].ignore.actions[0]", "not an event action"},
		{"redis without addrs", nil, "redis:\n  db: 2\n", "redis.addrs", "required"},
		{"redis tls", nil, "redis:\n  addrs: [127.0.0.1:6379]\n  tls:\n    certificate: /c.pem\n", "redis.tls", "go together"},
		{"health twice", nil, "health:\n  file:\n    - file: /tmp/down\n    - file: /tmp/down\n", "health.file[1].file", "checked twice"},
		{"health tcp", nil, "health:\n  tcp:\n    - addr: redis\n", "health.tcp[0].addr", "host:port"},
		{"health http", nil, "health:\n  http:\n    - uri: /v2/\n", "health.http[0].uri", "URL"},
		{"proxy", nil, "proxy:\n  remoteurl: https://registry-1.docker.io\n", "proxy.remoteurl", "pull-through"},
		{"url regexp", nil, "validation:\n  manifests:\n    urls:\n      allow: ['(']\n", "validation.manifests.urls.allow[0]", "missing closing )"},
		{"formatter", nil, "log:\n  formatter: xml\n", "log.formatter", "not a log format"},
		{"hook type", nil, "log:\n  hooks:\n    - type: slack\n      levels: [error]\n", "log.hooks[0].type", "not a log hook type (mail)"},
		{"hook insecure", nil, "log:\n  hooks:\n    - type: mail\n      levels: [error]\n      options:\n        smtp: {addr: 'mail:25', insecure: true}\n        from: a@example.com\n        to: [b@example.com]\n", "log.hooks[0].options.smtp.insecure", "no effect"},
		{"hook smtp", nil, "log:\n  hooks:\n    - type: mail\n      levels: [error]\n      options:\n        from: a@example.com\n        to: [b@example.com]\n", "log.hooks[0].options.smtp.addr", "host:port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testcfg.WithYAML(t, tc.vars, tc.yml)
			_, _, err := Load(c)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *ConfigError, got %v", err)
			}
			t.Log(err)
			if ce.File != c.RegistryConfig() {
				t.Errorf("file %q, want %q", ce.File, c.RegistryConfig())
			}
			for _, ke := range ce.Errs {
				if ke.Key == tc.key && strings.Contains(ke.Msg, tc.msg) {
					if want := c.RegistryConfig() + ": " + tc.key + ": "; !strings.Contains(err.Error(), want) {
						t.Errorf("message %q lacks %q", err, want)
					}
					return
				}
			}
			t.Errorf("no error for %s containing %q:\n%v", tc.key, tc.msg, err)
		})
	}
}

// All problems are reported at once, one line each.
func TestCheckConfigReportsAll(t *testing.T) {
	c := testcfg.WithYAML(t, nil, "storage:\n  gcs:\n    bucket: b\nauth:\n  token: {}\nproxy:\n  remoteurl: https://example.com\n")
	_, _, err := Load(c)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Errs) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 3 {
		t.Errorf("want one line per problem:\n%v", err)
	}
}

// Keys the embedded registry honours pass, including the generated file.
func TestCheckConfigAccepts(t *testing.T) {
	yml := `log:
  level: debug
  formatter: logstash
  fields: {service: ocireg-tool}
  accesslog: {disabled: true}
  hooks:
    - type: mail
      disabled: true
    - type: mail
      levels: [panic, error]
      options:
        smtp: {addr: "127.0.0.1:25"}
        from: registry@example.com
        to: [ops@example.com]
storage:
  filesystem:
    rootdirectory: /srv/registry
    maxthreads: 50
  delete: {enabled: false}
  redirect: {disable: true}
  tag: {concurrencylimit: 4}
  cache: {blobdescriptor: redis}
  maintenance:
    uploadpurging: {enabled: false}
    readonly: {enabled: true}
middleware:
  storage:
    - name: redirect
      options: {baseurl: "https://cdn.example.com/registry"}
    - name: cloudfront
      disabled: true
redis:
  addrs: [127.0.0.1:6379]
http:
  host: https://registry.example.com:5000
  relativeurls: true
  draintimeout: 5s
  headers:
    X-Content-Type-Options: [nosniff]
  debug:
    addr: 127.0.0.1:0
    prometheus: {enabled: true, path: /m}
  http2: {disabled: true}
  h2c: {enabled: true}
  tls:
    minimumtls: tls1.2
    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
notifications:
  events: {includereferences: true}
  endpoints:
    - name: ci
      url: https://ci.example.com/events
      timeout: 2s
      threshold: 3
      backoff: 1s
      ignore: {actions: [pull]}
    - name: off
      disabled: true
      url: nowhere
health:
  storagedriver: {enabled: true, interval: 10s, threshold: 3}
  file: [{file: /tmp/maintenance}]
  http: [{uri: "http://127.0.0.1:1/health"}]
  tcp: [{addr: "127.0.0.1:1"}]
catalog: {maxentries: 50}
tags: {maxtags: 50}
validation:
  manifests:
    urls: {allow: ['^https://example\.com/']}
    indexes: {platforms: none}
policy:
  repository: {classes: [image]}
auth: none
`
	c := testcfg.WithYAML(t, testcfg.Secure, yml)
	cfg, adj, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Middleware["storage"]) != 1 || cfg.Middleware["storage"][0].Name != "redirect" {
		t.Errorf("disabled middleware kept: %+v", cfg.Middleware["storage"])
	}
	found := false
	for _, a := range adj {
		found = found || strings.Contains(string(a), "middleware.storage[1] (cloudfront) skipped")
	}
	if !found {
		t.Errorf("no adjustment for the disabled middleware: %v", adj)
	}

	// The generated file, in each mode.
	for _, vars := range []config.Vars{nil, testcfg.Secure, {"CONTAINER_REGISTRY_SECURE": "1"}} {
		c := testcfg.WithYAML(t, vars, "")
		if err := os.Remove(c.RegistryConfig()); err != nil {
			t.Fatal(err)
		}
		if _, err := EnsureFile(c); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Load(c); err != nil {
			t.Errorf("generated file (%v): %v", vars, err)
		}
	}
}

// auth: none gives way to htpasswd when auth is on.
func TestAuthNoneWithAuthOn(t *testing.T) {
	c := testcfg.WithYAML(t, config.Vars{"CONTAINER_REGISTRY_SECURE": "1"}, "auth: none\n")
	cfg, _, err := Load(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Type() != "htpasswd" || len(cfg.Auth) != 1 {
		t.Errorf("auth %v, want htpasswd alone", cfg.Auth)
	}
}

// distribution's REGISTRY_* overrides are checked like the file.
func TestCheckConfigEnvironmentOverrides(t *testing.T) {
	c := testcfg.WithYAML(t, nil, "")
	t.Setenv("REGISTRY_STORAGE_S3_BUCKET", "builds")
	_, _, err := Load(c)
	if err == nil || !strings.Contains(err.Error(), "multiple storage drivers") || !strings.Contains(err.Error(), "s3") {
		t.Fatalf("a second driver from the environment: %v", err)
	}
	os.Unsetenv("REGISTRY_STORAGE_S3_BUCKET")
	t.Setenv("REGISTRY_LOG_FORMATTER", "yaml")
	var ce *ConfigError
	if _, _, err = Load(c); !errors.As(err, &ce) || ce.Errs[0].Key != "log.formatter" {
		t.Fatalf("log.formatter from the environment: %v", err)
	}
}
