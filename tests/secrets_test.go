package tests

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

// cmdlineWatch samples the argv of every process while a test runs and
// records those that contain any of the secrets.
type cmdlineWatch struct {
	stop chan struct{}
	done sync.WaitGroup
	mu   sync.Mutex
	hits []string
	n    int
}

func watchCmdlines(secrets ...string) *cmdlineWatch {
	w := &cmdlineWatch{stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range procs {
				data, err := os.ReadFile(p)
				if err != nil || len(data) == 0 {
					continue
				}
				argv := strings.ReplaceAll(string(data), "\x00", " ")
				for _, s := range secrets {
					if strings.Contains(argv, s) {
						w.mu.Lock()
						w.hits = append(w.hits, argv)
						w.mu.Unlock()
					}
				}
			}
			w.mu.Lock()
			w.n++
			w.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

// Hits is how many offending command lines were seen so far.
func (w *cmdlineWatch) Hits() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.hits)
}

// Stop ends sampling and returns the offending command lines and the
// number of samples taken.
func (w *cmdlineWatch) Stop() ([]string, int) {
	close(w.stop)
	w.done.Wait()
	return w.hits, w.n
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "Pw-" + hex.EncodeToString(b)
}

// The registry password never appears in any process's argv, in the server
// log, or in any file that is not mode 0600.
func TestSecretsStayPrivate(t *testing.T) {
	secret := randomSecret(t)
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})
	e.Extra["CONTAINER_REGISTRY_PASSWORD"] = secret
	basic := base64.StdEncoding.EncodeToString([]byte("yocto:" + secret))

	// Control: the watch does see a secret in an argument list.
	control := watchCmdlines(secret)
	if err := exec.Command("sh", "-c", "sleep 0.2", secret).Run(); err != nil {
		t.Fatal(err)
	}
	if hits, _ := control.Stop(); len(hits) == 0 {
		t.Fatal("the argv watch missed a secret passed on a command line")
	}

	w := watchCmdlines(secret, basic)
	if r := e.Run("start"); r.Code != 0 {
		t.Fatalf("start: %s", r.Out())
	}
	if r := e.Run("status"); r.Code != 0 {
		t.Fatalf("status: %s", r.Out())
	}
	// An authenticated and an unauthenticated request, so the access log
	// has something to (not) show.
	client := tlsClient(t, e)
	for _, auth := range []bool{true, false} {
		req, _ := http.NewRequest("GET", "https://"+e.URL+"/v2/_catalog", nil)
		if auth {
			req.SetBasicAuth("yocto", secret)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 200, false: 401}[auth]; resp.StatusCode != want {
			t.Errorf("catalog with auth=%v: %d, want %d", auth, resp.StatusCode, want)
		}
	}
	if r := e.Run("stop"); r.Code != 0 {
		t.Fatalf("stop: %s", r.Out())
	}
	hits, samples := w.Stop()
	if samples < 10 {
		t.Errorf("only %d argv samples taken", samples)
	}
	for _, h := range hits {
		t.Errorf("secret in a process argument list: %s", h)
	}

	filepath.WalkDir(e.Storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, _ := d.Info()
		if info.Size() > 64<<20 {
			return nil
		}
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), secret) || strings.Contains(string(data), basic) {
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s holds the secret with mode %v", p, info.Mode().Perm())
			}
			if strings.HasSuffix(p, ".log") {
				t.Errorf("the server log %s holds the secret", p)
			}
		}
		return nil
	})
	pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
	if err != nil || strings.TrimSpace(string(pw)) != secret {
		t.Errorf("auth/password does not hold the password from the environment (%v)", err)
	}
}

func tlsClient(t *testing.T, e *Env) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(e.Storage, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := newPool(t, ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// pki/ and auth/ are 0700 and keys and password 0600 even under umask 000
// (the signing key and its passphrase too).
func TestPrivateModesUnderOpenUmask(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_SIGN": "1"})
	os.RemoveAll(filepath.Join(e.Storage, "pki"))
	cmd := exec.Command("sh", "-c", "umask 000; exec \"$0\" start", e.Script)
	cmd.Env = baseEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start under umask 000: %v\n%s", err, out)
	}
	for rel, want := range map[string]fs.FileMode{
		"pki":              0o700 | fs.ModeDir,
		"auth":             0o700 | fs.ModeDir,
		"pki/ca.key":       0o600,
		"pki/server.key":   0o600,
		"auth/password":    0o600,
		"auth/htpasswd":    0o600,
		"http.secret":      0o600,
		"pki/ca.crt":       0o644,
		"pki/server.crt":   0o644,
		"pki/signing.key":  0o600,
		"pki/signing.pass": 0o600,
		"pki/signing.pub":  0o644,
	} {
		st, err := os.Stat(filepath.Join(e.Storage, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if st.Mode() != want {
			t.Errorf("%s mode %v, want %v", rel, st.Mode(), want)
		}
	}
}

// The server refuses TLS below 1.2 and speaks 1.2 and 1.3.
func TestServerRefusesOldTLS(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"})
	if r := e.Run("start"); r.Code != 0 {
		t.Fatalf("start: %s", r.Out())
	}
	ca, _ := os.ReadFile(filepath.Join(e.Storage, "pki", "ca.crt"))
	pool := newPool(t, ca)
	for _, v := range []struct {
		name string
		ver  uint16
		ok   bool
	}{{"TLS 1.0", tls.VersionTLS10, false}, {"TLS 1.1", tls.VersionTLS11, false}, {"TLS 1.2", tls.VersionTLS12, true}, {"TLS 1.3", tls.VersionTLS13, true}} {
		conn, err := tls.Dial("tcp", "127.0.0.1:"+e.Port, &tls.Config{RootCAs: pool, MinVersion: v.ver, MaxVersion: v.ver, ServerName: "localhost"})
		if err == nil {
			conn.Close()
		}
		if (err == nil) != v.ok {
			t.Errorf("%s handshake: err = %v, want success %v", v.name, err, v.ok)
		}
	}
}

// runStdin runs the helper with args and env, holding its standard input
// open until the argv watch running has seen it (its argv holds a marker
// only this run has); then it writes secret and a newline, closes stdin
// and waits. seenAfter is how many times running saw it after the secret
// was written: the secret was in the process while those samples looked.
func (e *Env) runStdin(t *testing.T, running *cmdlineWatch, env map[string]string, secret string, args ...string) (r Result, seenAfter int) {
	t.Helper()
	cmd := exec.Command(e.Script, args...)
	cmd.Env = baseEnv()
	for k, v := range e.Extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	before := running.Hits()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for running.Hits() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if running.Hits() == before {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%v: the argv watch never saw the command run", args)
	}
	written := running.Hits()
	in.Write([]byte(secret + "\n"))
	in.Close()
	cmd.Wait()
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}, running.Hits() - written
}

// --password-stdin, --token-stdin and their import-source twins take the
// secret from standard input: it never shows in any process's argv, also
// not in the tool's own /proc/<pid>/cmdline while it pushes or imports
// with it, and the output names the stdin flag as the credentials' source.
func TestSecretsFromStdin(t *testing.T) {
	secret, srcSecret := randomSecret(t), randomSecret(t)
	basic := base64.StdEncoding.EncodeToString([]byte("yocto:" + secret))
	root := filepath.Join(t.TempDir(), "images")
	if _, err := sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}}); err != nil {
		t.Fatal(err)
	}
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1", "DEPLOY_DIR_IMAGES": root})
	if r := e.RunEnv(map[string]string{"CONTAINER_REGISTRY_PASSWORD": secret}, "start"); r.Code != 0 {
		t.Fatalf("start: %s", r.Out())
	}
	// The local password file would do as well: move it away, so only
	// the secret on stdin can open the registry.
	pwFile := filepath.Join(e.Storage, "auth", "password")
	if err := os.Rename(pwFile, pwFile+".away"); err != nil {
		t.Fatal(err)
	}
	src := testreg.New(t, testreg.WithHtpasswd(authUser, srcSecret))
	multiArchSource(t, src.Host, "org/private:v1", remote.WithAuth(&authn.Basic{Username: authUser, Password: srcSecret}))

	leak := watchCmdlines(secret, basic, srcSecret)
	for i, c := range []struct {
		secret string
		env    map[string]string
		args   []string
		repo   string
		source string
	}{
		{secret, nil, []string{"push", "app", "--creds", "yocto", "--password-stdin"}, "yocto/app", "Using credentials from --password-stdin (user yocto)"},
		{secret, map[string]string{"CONTAINER_REGISTRY_USER": "yocto"}, []string{"push", "app", "--token-stdin"}, "yocto/app", "Using credentials from --token-stdin"},
		// The destination is the local registry: its password from the
		// environment (not argv); the source's from stdin.
		{srcSecret, map[string]string{"CONTAINER_REGISTRY_PASSWORD": secret}, []string{"import", src.Host + "/org/private:v1", "viapw", "--src-creds", authUser, "--src-password-stdin"}, "yocto/viapw", "Imported "},
		{srcSecret, map[string]string{"CONTAINER_REGISTRY_PASSWORD": secret, "CONTAINER_REGISTRY_USER": authUser}, []string{"import", src.Host + "/org/private:v1", "viatok", "--src-token-stdin"}, "yocto/viatok", "Imported "},
	} {
		// A tag of its own makes this run's argv unique: the watch that
		// looks for it sees this process and no other.
		tag := fmt.Sprintf("stdin%d-%s", i, strings.ToLower(randomSecret(t)))
		running := watchCmdlines(tag)
		r, seen := e.runStdin(t, running, c.env, c.secret, append(c.args, "--tag", tag)...)
		running.Stop()
		if r.Code != 0 || !strings.Contains(r.Stdout, c.source) {
			t.Errorf("%v: exit %d, want success with %q:\n%s", c.args, r.Code, c.source, r.Out())
		}
		if strings.Contains(r.Out(), c.secret) {
			t.Errorf("%v: the output shows the secret:\n%s", c.args, r.Out())
		}
		if strings.Contains(r.Out(), "Warning:") {
			t.Errorf("%v: a warning, with the secret on stdin:\n%s", c.args, r.Out())
		}
		if seen == 0 {
			t.Errorf("%v: the argv watch never looked at the tool while it held the secret", c.args)
		}
		t.Logf("%v: %d argv samples of the tool holding the secret", c.args[:2], seen)
		if r := e.RunEnv(map[string]string{"CONTAINER_REGISTRY_PASSWORD": secret}, "tags", c.repo); !strings.Contains(r.Stdout, tag) {
			t.Errorf("%v: tag %s missing:\n%s", c.args, tag, r.Out())
		}
	}
	hits, samples := leak.Stop()
	if samples < 10 {
		t.Errorf("only %d argv samples taken", samples)
	}
	for _, h := range hits {
		t.Errorf("secret in a process argument list: %s", h)
	}

	// Control: a secret given with --creds is in the tool's argv, and the
	// warning says that other local users can read it.
	control := watchCmdlines(secret)
	r := e.Run("push", "app", "--tag", "control", "--creds", "yocto:"+secret)
	if hits, _ := control.Stop(); len(hits) == 0 {
		t.Errorf("the argv watch missed --creds in the tool's argv (exit %d)", r.Code)
	}
	if r.Code != 0 || !strings.Contains(r.Stdout, "Warning: --creds: other local users can read the password in this command's argument list (ps)") {
		t.Errorf("--creds: exit %d, want success and the ps warning:\n%s", r.Code, r.Out())
	}
}

// The S3 secret key (from a 0600 credentials file, or from the standard
// AWS_* environment variables) never appears in any process's argv, in
// the helper script, registry-config.yml, the server log or any file of
// the storage; a credentials file readable by others is refused before
// anything starts; wrong keys are an error, not an anonymous fallback.
func TestS3SecretsStayPrivate(t *testing.T) {
	s3 := StartS3(t)
	w := watchCmdlines(s3.SecretKey)
	root := deployTree(t)
	vars := map[string]string{"CONTAINER_REGISTRY_BACKEND": s3.Backend("secrets"), "DEPLOY_DIR_IMAGES": root}
	viaFile := NewEnv(t, vars)
	creds := s3.CredsFile(t)
	viaFile.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"] = creds
	viaEnv := NewEnv(t, vars)
	viaEnv.Extra["AWS_ACCESS_KEY_ID"] = s3.AccessKey
	viaEnv.Extra["AWS_SECRET_ACCESS_KEY"] = s3.SecretKey

	if err := os.Chmod(creds, 0o644); err != nil {
		t.Fatal(err)
	}
	r := viaFile.Run("start")
	if r.Code == 0 || !strings.Contains(r.Out(), "has mode 0644") || !strings.Contains(r.Out(), creds) {
		t.Fatalf("start with a world-readable credentials file: exit %d\n%s", r.Code, r.Out())
	}
	if strings.Contains(r.Out(), s3.SecretKey) {
		t.Error("the refusal shows the secret")
	}
	os.Chmod(creds, 0o600)
	for _, e := range []*Env{viaFile, viaEnv} {
		e.mustRun(t, 0, "start")
		e.mustRun(t, 0, "status")
	}
	viaFile.mustRun(t, 0, "push", "--strategy", "latest")
	viaEnv.mustRun(t, 0, "verify")
	viaEnv.mustRun(t, 0, "gc", "--yes")
	for _, e := range []*Env{viaFile, viaEnv} {
		e.mustRun(t, 0, "stop")
	}
	hits, samples := w.Stop()
	if samples < 10 {
		t.Errorf("only %d argv samples taken", samples)
	}
	for _, h := range hits {
		t.Errorf("S3 secret in a process argument list: %s", h)
	}
	for _, e := range []*Env{viaFile, viaEnv} {
		filepath.WalkDir(e.Storage, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			data, _ := os.ReadFile(p)
			if strings.Contains(string(data), s3.SecretKey) || strings.Contains(string(data), s3.AccessKey) {
				t.Errorf("%s holds the S3 credentials", p)
			}
			return nil
		})
	}

	// Wrong keys: refused by the engine, said clearly.
	bad := NewEnv(t, vars)
	bad.Extra["AWS_ACCESS_KEY_ID"] = s3.AccessKey
	bad.Extra["AWS_SECRET_ACCESS_KEY"] = "not-the-key"
	r = bad.Run("start")
	if r.Code == 0 || !strings.Contains(r.Out(), "SignatureDoesNotMatch") && !strings.Contains(r.Out(), "AccessDenied") {
		t.Fatalf("start with wrong S3 keys: exit %d\n%s", r.Code, r.Out())
	}
}
