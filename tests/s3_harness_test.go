package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
)

// S3Server is a SeaweedFS server (master, volume, filer and S3 gateway in
// one process) on loopback ports, with one bucket and one identity: the
// real S3 engine the shared-storage tests run against.
type S3Server struct {
	t         *testing.T
	bin, dir  string
	args      []string
	cmd       *exec.Cmd
	exited    chan struct{}
	Endpoint  string // http://127.0.0.1:port
	Bucket    string
	AccessKey string
	SecretKey string
}

// weedBin is the SeaweedFS binary `make deps` builds into the cache
// tests/seaweedfs.sh names.
func weedBin(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("sh", "seaweedfs.sh", "path").Output()
	if err != nil {
		t.Fatalf("tests/seaweedfs.sh path: %v", err)
	}
	return testtool.NeedFile(t, "SeaweedFS", strings.TrimSpace(string(out)), testtool.Deps+" (it builds it once per machine)")
}

// StartS3 starts SeaweedFS with S3 credentials required and creates the
// bucket. It is stopped when the test ends. extra are more weed server
// flags.
func StartS3(t *testing.T, extra ...string) *S3Server {
	t.Helper()
	s := &S3Server{t: t, bin: weedBin(t), dir: t.TempDir(), Bucket: "registry", AccessKey: "AK" + randHex(t, 9), SecretKey: randHex(t, 20)}
	ident := map[string]any{"identities": []any{map[string]any{
		"name":        "registry",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	data, _ := json.Marshal(ident)
	conf := filepath.Join(s.dir, "s3.json")
	if err := os.WriteFile(conf, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := func() string { return FreePort(t) }
	s3port := p()
	s.Endpoint = "http://127.0.0.1:" + s3port
	data2 := filepath.Join(s.dir, "data")
	os.MkdirAll(data2, 0o755)
	s.args = []string{"server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + data2,
		"-master.port=" + p(), "-master.port.grpc=" + p(), "-master.volumeSizeLimitMB=64",
		"-volume.port=" + p(), "-volume.port.grpc=" + p(), "-volume.max=0",
		"-filer", "-filer.port=" + p(), "-filer.port.grpc=" + p(),
		"-s3", "-s3.port=" + s3port, "-s3.port.grpc=" + p(), "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + conf}
	s.args = append(s.args, extra...)
	s.Start()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(90 * time.Second)
	cl := s.client()
	for {
		_, err := cl.CreateBucket(&s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
		if err == nil || strings.Contains(err.Error(), "BucketAlreadyExists") || strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") {
			_, err = cl.PutObject(&s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("ready"), Body: bytes.NewReader([]byte("ok"))})
			if err == nil {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeaweedFS S3 not ready at %s: %v\n%s", s.Endpoint, err, s.Log())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// client is an S3 client of the test's identity (aws-sdk-go, as an
// independent client of the engine).
func (s *S3Server) client() *s3.S3 {
	sess := session.Must(session.NewSession(aws.NewConfig().
		WithEndpoint(s.Endpoint).WithRegion("us-east-1").WithS3ForcePathStyle(true).
		WithCredentials(credentials.NewStaticCredentials(s.AccessKey, s.SecretKey, "")).
		WithMaxRetries(0).WithHTTPClient(&httpClientNoProxy)))
	return s3.New(sess)
}

// Start (re)starts the server on its ports and data.
func (s *S3Server) Start() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "weed.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Dir = s.dir
	s.cmd.Env = baseEnv()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting SeaweedFS: %v", err)
	}
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(s.cmd, s.exited)
	waitPort(s.t, strings.TrimPrefix(s.Endpoint, "http://"), 60*time.Second)
}

// Stop stops the server (its process group) and waits for it.
func (s *S3Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second): // SeaweedFS can take much longer
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

// Log is the server's log.
func (s *S3Server) Log() string {
	data, _ := os.ReadFile(filepath.Join(s.dir, "weed.log"))
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// Backend is the CONTAINER_REGISTRY_BACKEND of prefix in the bucket.
func (s *S3Server) Backend(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1", s.Bucket, prefix, s.Endpoint)
}

// CredsFile writes the identity's keys into a 0600 file for
// CONTAINER_REGISTRY_BACKEND_CREDENTIALS.
func (s *S3Server) CredsFile(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "s3.creds")
	body := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", s.AccessKey, s.SecretKey)
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Keys lists the object keys under prefix.
func (s *S3Server) Keys(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.client().ListObjectsV2Pages(&s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(prefix)},
		func(p *s3.ListObjectsV2Output, _ bool) bool {
			for _, o := range p.Contents {
				keys = append(keys, *o.Key)
			}
			return true
		})
	if err != nil {
		t.Fatalf("listing s3://%s/%s: %v", s.Bucket, prefix, err)
	}
	return keys
}

// StartRedis starts Debian's redis-server on a free loopback port, without
// persistence; it is stopped when the test ends. It returns host:port.
func StartRedis(t *testing.T) string {
	t.Helper()
	bin := testtool.Need(t, "redis-server")
	port := FreePort(t)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Env = baseEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitPort(t, "127.0.0.1:"+port, 20*time.Second)
	return "127.0.0.1:" + port
}

// waitPort waits until addr accepts TCP connections.
func waitPort(t *testing.T, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within %s", addr, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// httpClientNoProxy is the test S3 client's HTTP client: loopback only.
var httpClientNoProxy = http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
