package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBackend(t *testing.T) {
	c, err := FromVars(Vars{"TOPDIR": "/b", "CONTAINER_REGISTRY_BACKEND": "s3://reg/yocto/farm?endpoint=http://s3.lab:8333&region=eu-west-1",
		"CONTAINER_REGISTRY_REDIS": "redis.lab:6379/2"})
	if err != nil {
		t.Fatal(err)
	}
	b := c.Backend
	if !b.S3() || b.Bucket != "reg" || b.Prefix != "yocto/farm" || b.Endpoint != "http://s3.lab:8333" || b.Region != "eu-west-1" || b.VirtualHost {
		t.Errorf("backend %+v", b)
	}
	if c.Redis != (Redis{Addr: "redis.lab:6379", DB: 2}) {
		t.Errorf("redis %+v", c.Redis)
	}
	if c.BakedVars()["CONTAINER_REGISTRY_BACKEND"] != b.URL {
		t.Error("backend not baked")
	}
	c, err = FromVars(Vars{"TOPDIR": "/b", "CONTAINER_REGISTRY_BACKEND": "s3://reg?region=AK:hunter2secret@x"})
	if err != nil || strings.Contains(c.Backend.String(), "hunter2secret") {
		t.Errorf("backend shown as %q (%v)", c.Backend, err)
	}
	c, err = FromVars(Vars{"TOPDIR": "/b"})
	if err != nil || c.Backend.S3() || c.Redis.Set() || c.Backend.String() != "filesystem" {
		t.Errorf("default: %+v %+v %v", c.Backend, c.Redis, err)
	}
}

// Bad values name the variable and say what is wrong; a URL with
// credentials is refused without echoing them.
func TestParseBackendErrors(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"CONTAINER_REGISTRY_BACKEND", "s3://AKIAXX:hunter2secret@reg/p", "credentials do not belong"},
		{"CONTAINER_REGISTRY_BACKEND", "gs://reg/p", `unknown storage scheme "gs"`},
		{"CONTAINER_REGISTRY_BACKEND", "s3:///p", "no bucket"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=ftp://x", "endpoint must be an http:// or https:// URL"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http://u:pw@x", "without credentials"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?bucket=x", `unknown parameter "bucket"`},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?addressing=dns", "addressing must be path or virtual"},
		// A query url.Query() would read in part (it drops what it cannot
		// parse) is refused, naming what is wrong.
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http://s3.lab:8333;region=eu-west-1", "query"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http://s3.lab:8333&region=eu%zz", "query"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?region=eu-west-1&region=us-east-1", `"region" given 2 times`},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?Region=eu-west-1", `unknown parameter "Region"`},
		// Credentials anywhere in the URL never come back in the message.
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http://AKIAXX:hunter2secret@s3.lab", "without credentials"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http%3A%2F%2FAKIAXX%3Ahunter2secret%40s3.lab", "without credentials"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http://AKIAXX:hunter2secret@s3.lab&bucket=x", `unknown parameter "bucket"`},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?addressing=http://AKIAXX:hunter2secret@dns", "addressing must be path or virtual"},
		{"CONTAINER_REGISTRY_BACKEND", "s3://reg?endpoint=http://AKIAXX:hunter2secret@s3.lab;region=x", "query"},
		{"CONTAINER_REGISTRY_BACKEND", "gs://AKIAXX:hunter2secret@reg/p", "credentials do not belong"},
		{"CONTAINER_REGISTRY_URL", "http://AKIAXX:hunter2secret@reg.lab:5000", "without a scheme"},
		{"CONTAINER_REGISTRY_URL", "AKIAXX:hunter2secret@reg.lab:5000", "must be host:port"},
		{"CONTAINER_REGISTRY_TARGET_URL", "AKIAXX:hunter2secret@reg.lab:5000", "must be host:port"},
		{"CONTAINER_REGISTRY_REDIS", "redis.lab", "is not host:port[/db]"},
		{"CONTAINER_REGISTRY_REDIS", "redis.lab:6379/x", "database must be a whole number"},
		{"CONTAINER_REGISTRY_REDIS", "redis.lab:99999", "port must be 1-65535"},
	} {
		_, err := FromVars(Vars{"TOPDIR": "/b", tc.name: tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.name+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want %q", tc.name, tc.value, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "AKIAXX")) {
			t.Errorf("%s: the error shows the secret: %v", tc.value, err)
		}
	}
}

// The credentials file must be the owner's alone, hold only known keys,
// and its parse errors never quote it.
func TestReadBackendCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(body string, mode os.FileMode) string {
		f := filepath.Join(dir, "creds")
		os.Remove(f)
		if err := os.WriteFile(f, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return f
	}
	load := func(f string) (BackendSecrets, error) {
		c, err := FromVars(Vars{"TOPDIR": "/b", "CONTAINER_REGISTRY_BACKEND_CREDENTIALS": f})
		if err != nil {
			t.Fatal(err)
		}
		if _, baked := c.BakedVars()["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"]; baked {
			t.Error("the credentials file is baked")
		}
		return c.ReadBackendCredentials()
	}
	s, err := load(write("AWS_ACCESS_KEY_ID=AK1\nAWS_SECRET_ACCESS_KEY=sk1\nREDIS_PASSWORD=rp\n", 0o600))
	if err != nil || s.AccessKey != "AK1" || s.SecretKey != "sk1" || s.RedisPassword != "rp" {
		t.Errorf("%+v %v", s, err)
	}
	for _, tc := range []struct {
		body string
		mode os.FileMode
		want string
	}{
		{"AWS_ACCESS_KEY_ID=AK1\nAWS_SECRET_ACCESS_KEY=topsecret\n", 0o644, "has mode 0644"},
		{"AWS_ACCESS_KEY_ID=AK1\n", 0o600, "go together"},
		{"AWS_SECRET=topsecret\n", 0o600, "unknown key AWS_SECRET"},
		{"topsecret\n", 0o600, "line 1: not a KEY=value line"},
	} {
		_, err := load(write(tc.body, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "CONTAINER_REGISTRY_BACKEND_CREDENTIALS") {
			t.Errorf("%q: %v, want %q", tc.body, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
}
