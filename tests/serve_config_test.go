package tests

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// editConfig rewrites the generated registry-config.yml of e as a user
// would: each pair is text that must be there and its replacement.
func editConfig(t *testing.T, e *Env, pairs ...string) {
	t.Helper()
	file := filepath.Join(e.Storage, "registry-config.yml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("registry-config.yml lacks %q:\n%s", pairs[i], text)
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// registryLog is the log of e's registry.
func registryLog(t *testing.T, e *Env) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.Storage, "registry-"+e.Port+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// curlBody fetches url with curl and returns its body.
func curlBody(t *testing.T, args ...string) string {
	t.Helper()
	testtool.Need(t, "curl")
	out, err := exec.Command("curl", append([]string{"-sS", "--fail"}, args...)...).Output()
	if err != nil {
		t.Errorf("curl %v: %v", args, err)
	}
	return string(out)
}

// The debug server with its metrics, notifications delivered to a webhook
// and log.fields, as a user enables them in the generated file.
func TestServeConfigDebugAndNotifications(t *testing.T) {
	type event struct {
		Action string
		Target struct{ Repository, Tag string }
	}
	events := make(chan event, 1000)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Events []event }
		if json.NewDecoder(r.Body).Decode(&env) == nil && r.Header.Get("X-Build") == "ci-42" {
			for _, ev := range env.Events {
				events <- ev
			}
		}
	}))
	defer receiver.Close()

	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": deployTree(t)})
	debug := "127.0.0.1:" + FreePort(t)
	editConfig(t, e,
		"http:\n", "http:\n  debug:\n    addr: "+debug+"\n    prometheus:\n      enabled: true\n      path: /metrics\n",
		"health:\n", "notifications:\n  endpoints:\n    - name: ci\n      url: "+receiver.URL+"/hook\n      headers:\n        X-Build: [ci-42]\n      timeout: 2s\n      ignore:\n        actions: [pull]\nhealth:\n")
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push")

	if body := curlBody(t, "http://"+debug+"/debug/health"); strings.TrimSpace(body) != "{}" {
		t.Errorf("debug health: %q", body)
	}
	metrics := curlBody(t, "http://"+debug+"/metrics")
	if !regexp.MustCompile(`(?m)^registry_http_requests_total\{.*handler="manifest".*method="put".*\} [1-9]`).MatchString(metrics) {
		t.Errorf("no manifest PUT counted in the metrics:\n%.2000s", metrics)
	}

	deadline := time.After(15 * time.Second)
	for found := false; !found; {
		select {
		case ev := <-events:
			if ev.Action == "pull" {
				t.Errorf("ignored action delivered: %+v", ev)
			}
			found = ev.Action == "push" && ev.Target.Repository == "yocto/container-base" && ev.Target.Tag == "latest"
		case <-deadline:
			t.Fatal("no push notification for yocto/container-base:latest")
		}
	}

	// log.fields of the generated file are on distribution's own lines.
	for _, line := range strings.Split(registryLog(t, e), "\n") {
		if strings.Contains(line, "using inmemory blob descriptor cache") && !strings.Contains(line, "service=ocireg-tool") {
			t.Errorf("log line without log.fields: %s", line)
		}
	}
	e.mustRun(t, 0, "stop")
}

// openssl runs s_client against addr with args and reports whether the
// handshake succeeded.
func openssl(t *testing.T, addr, ca string, args ...string) bool {
	t.Helper()
	testtool.Need(t, "openssl")
	cmd := exec.Command("openssl", append([]string{"s_client", "-connect", addr, "-CAfile", ca, "-verify_return_error", "-brief"}, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	t.Logf("openssl %v: %v\n%s", args, err, out)
	return err == nil
}

// http.tls.minimumtls and http.tls.ciphersuites, checked with openssl; HTTP/2
// with curl.
func TestServeConfigTLS(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"})
	ca := filepath.Join(e.Storage, "pki", "ca.crt")
	addr := net.JoinHostPort("127.0.0.1", e.Port)

	editConfig(t, e, "    minimumtls: tls1.2\n", "    minimumtls: tls1.3\n")
	e.mustRun(t, 0, "start")
	if openssl(t, addr, ca, "-tls1_2") {
		t.Errorf("TLS 1.2 handshake accepted with minimumtls tls1.3")
	}
	if !openssl(t, addr, ca, "-tls1_3") {
		t.Errorf("TLS 1.3 handshake refused")
	}
	e.mustRun(t, 0, "status")
	e.mustRun(t, 0, "stop")

	editConfig(t, e, "    minimumtls: tls1.3\n", "    minimumtls: tls1.2\n    ciphersuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n")
	e.mustRun(t, 0, "start")
	if openssl(t, addr, ca, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384") {
		t.Errorf("unlisted cipher suite accepted")
	}
	if !openssl(t, addr, ca, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256") {
		t.Errorf("listed cipher suite refused")
	}
	if v := curlBody(t, "--cacert", ca, "--http2", "-o", "/dev/null", "-w", "%{http_version}", "https://"+e.URL+"/v2/"); v != "2" {
		t.Errorf("HTTP version %q, want 2", v)
	}
	e.mustRun(t, 0, "stop")
}

// Keys the embedded registry cannot honour make start fail, naming the key
// on stdout, and leave nothing running.
func TestServeConfigRejected(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fsDriver := regexp.MustCompile(`(?m)^  filesystem:\n    rootdirectory: .*\n`)
	cases := []struct {
		name string
		vars map[string]string
		edit func(t *testing.T, e *Env)
		want []string
	}{
		{"azure", nil, func(t *testing.T, e *Env) {
			file := filepath.Join(e.Storage, "registry-config.yml")
			data, _ := os.ReadFile(file)
			os.WriteFile(file, []byte(fsDriver.ReplaceAllString(string(data), "  azure:\n    accountname: builds\n")), 0o644)
		}, []string{"registry-config.yml: storage.azure: driver not compiled into ocireg-tool (available: filesystem, inmemory, s3, s3aws)"}},
		{"s3 without credentials", nil, func(t *testing.T, e *Env) {
			file := filepath.Join(e.Storage, "registry-config.yml")
			data, _ := os.ReadFile(file)
			os.WriteFile(file, []byte(fsDriver.ReplaceAllString(string(data), "  s3:\n    bucket: builds\n    region: eu-west-1\n    regionendpoint: http://127.0.0.1:1\n")), 0o644)
		}, []string{"no S3 credentials", "AWS_ACCESS_KEY_ID", "CONTAINER_REGISTRY_BACKEND_CREDENTIALS"}},
		{"tls1.0", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, func(t *testing.T, e *Env) {
			editConfig(t, e, "    minimumtls: tls1.2\n", "    minimumtls: tls1.0\n")
		}, []string{"registry-config.yml: http.tls.minimumtls: tls1.0 is below"}},
		{"several", nil, func(t *testing.T, e *Env) {
			editConfig(t, e, "health:\n", "middleware:\n  storage:\n    - name: cloudfront\nproxy:\n  remoteurl: https://registry-1.docker.io\nhealth:\n")
		}, []string{"middleware.storage[0]: storage middleware \"cloudfront\" not compiled", "proxy.remoteurl:"}},
		{"debug port busy", nil, func(t *testing.T, e *Env) {
			editConfig(t, e, "http:\n", "http:\n  debug:\n    addr: "+busy.Addr().String()+"\n")
		}, []string{"http.debug.addr: listening", "address already in use"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEnv(t, tc.vars)
			tc.edit(t, e)
			r := e.Run("start")
			if r.Code == 0 {
				t.Fatalf("start succeeded:\n%s", r.Stdout)
			}
			t.Logf("start:\n%s", r.Stdout)
			wantOut(t, r, "start", tc.want...)
			if _, err := os.Stat(filepath.Join(e.Storage, "registry-"+e.Port+".pid")); !os.IsNotExist(err) {
				t.Errorf("pid file left behind: %v", err)
			}
			e.mustRun(t, 1, "status")
		})
	}
}
