package regconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// A backend replaces the filesystem driver with s3 on its bucket (keys
// from the credentials file in memory only, never in the YAML); redis
// adds the redis cache.
func TestApplyBackend(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("AWS_ACCESS_KEY_ID=AKTEST\nAWS_SECRET_ACCESS_KEY=s3cr3tvalue\nREDIS_PASSWORD=redispw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": dir, "CONTAINER_REGISTRY_INSECURE": "1",
		"CONTAINER_REGISTRY_BACKEND":             "s3://reg/yocto?endpoint=http://127.0.0.1:1&region=eu-west-1",
		"CONTAINER_REGISTRY_REDIS":               "127.0.0.1:6379/3",
		"CONTAINER_REGISTRY_BACKEND_CREDENTIALS": creds})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureFile(c); err != nil {
		t.Fatal(err)
	}
	cfg, adj, err := Read(c)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Storage.Parameters()
	if cfg.Storage.Type() != "s3" || p["bucket"] != "reg" || p["rootdirectory"] != "/yocto" || p["regionendpoint"] != "http://127.0.0.1:1" ||
		p["region"] != "eu-west-1" || p["forcepathstyle"] != true || p["secure"] != false || p["accesskey"] != "AKTEST" || p["secretkey"] != "s3cr3tvalue" ||
		p["chunksize"] != s3ChunkSize || p["multipartcopychunksize"] != s3CopyPart {
		t.Errorf("s3 parameters %v", p)
	}
	if cfg.Storage["redirect"]["disable"] != true || cfg.Storage["cache"]["blobdescriptor"] != "redis" {
		t.Errorf("redirect %v, cache %v", cfg.Storage["redirect"], cfg.Storage["cache"])
	}
	if cfg.Redis.Options.Addrs[0] != "127.0.0.1:6379" || cfg.Redis.Options.DB != 3 || cfg.Redis.Options.Password != "redispw" {
		t.Errorf("redis %+v", cfg.Redis.Options)
	}
	for _, a := range adj {
		if strings.Contains(string(a), "s3cr3tvalue") || strings.Contains(string(a), "redispw") {
			t.Errorf("an adjustment (logged) holds a secret: %s", a)
		}
	}
	yml, _ := os.ReadFile(c.RegistryConfig())
	if strings.Contains(string(yml), "s3cr3tvalue") || strings.Contains(string(yml), "AKTEST") {
		t.Error("registry-config.yml holds the credentials")
	}
}

// A ca= file that is not a bounded regular file of certificates never
// reaches the S3 driver (which reads AWS_CA_BUNDLE without a limit).
func TestApplyBackendChecksCA(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_INSECURE": "1",
		"CONTAINER_REGISTRY_BACKEND": "s3://reg/yocto?endpoint=https://127.0.0.1:1&ca=/dev/zero"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Read(c)
	if err == nil || !strings.Contains(err.Error(), "ca=/dev/zero") || !strings.Contains(err.Error(), "a device") {
		t.Errorf("ca=/dev/zero: %v, want it refused", err)
	}
	if v := os.Getenv("AWS_CA_BUNDLE"); v != "" {
		t.Errorf("AWS_CA_BUNDLE=%s", v)
	}
}
