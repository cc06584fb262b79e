package tests

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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

// pki/ and auth/ are 0700 and keys and password 0600 even under umask 000.
func TestPrivateModesUnderOpenUmask(t *testing.T) {
	e := NewEnv(t, map[string]string{"CONTAINER_REGISTRY_SECURE": "1"})
	os.RemoveAll(filepath.Join(e.Storage, "pki"))
	cmd := exec.Command("sh", "-c", "umask 000; exec \"$0\" start", e.Script)
	cmd.Env = baseEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start under umask 000: %v\n%s", err, out)
	}
	for rel, want := range map[string]fs.FileMode{
		"pki":            0o700 | fs.ModeDir,
		"auth":           0o700 | fs.ModeDir,
		"pki/ca.key":     0o600,
		"pki/server.key": 0o600,
		"auth/password":  0o600,
		"auth/htpasswd":  0o600,
		"http.secret":    0o600,
		"pki/ca.crt":     0o644,
		"pki/server.crt": 0o644,
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
