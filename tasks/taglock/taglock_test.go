package taglock

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/sys/unix"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
)

// testConfig is a configuration whose storage directory holds a
// registry-config.yml (the generated one plus extra), with vars on top.
func testConfig(t *testing.T, extra string, vars config.Vars) *config.Config {
	t.Helper()
	v := config.Vars{"CONTAINER_REGISTRY_URL": "localhost:5000", "CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_STORAGE": t.TempDir()}
	for k, x := range vars {
		v[k] = x
	}
	c, err := config.FromVars(v)
	if err != nil {
		t.Fatal(err)
	}
	data, err := generator.RegistryConfigYAML(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.RegistryConfig(), append(data, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// holds takes the lock of repo:tag in l, checks that a second taker waits
// for it, and returns what held it (the redis key's value, if any).
func holds(t *testing.T, l *Lock, mr *miniredis.Miniredis) string {
	t.Helper()
	ctx := context.Background()
	unlock, err := l.Lock(ctx, "yocto/x", "latest")
	if err != nil {
		t.Fatal(err)
	}
	var held string
	if mr != nil {
		held, _ = mr.Get(keyPrefix + "yocto/x:latest")
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if again, err := l.Lock(short, "yocto/x", "latest"); err == nil {
		again()
		t.Fatalf("%s lock taken twice", l.Kind())
	}
	unlock()
	again, err := l.Lock(ctx, "yocto/x", "latest")
	if err != nil {
		t.Fatalf("%s lock not released: %v", l.Kind(), err)
	}
	again()
	return held
}

// A redis named only in registry-config.yml (no CONTAINER_REGISTRY_REDIS)
// is the push lock of the replicas serving that storage: the same redis
// serve uses.
func TestOpenRedisOnlyInRegistryConfig(t *testing.T) {
	mr := miniredis.RunT(t)
	c := testConfig(t, "redis:\n  addrs: ["+mr.Addr()+"]\n  db: 0\n",
		config.Vars{"CONTAINER_REGISTRY_BACKEND": "s3://bucket/prefix?endpoint=http://127.0.0.1:1&region=us-east-1"})
	if c.Redis.Set() {
		t.Fatal("CONTAINER_REGISTRY_REDIS is set: the test needs it unset")
	}
	l, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Kind() != Redis || !l.Guards() || l.LocalDisk() {
		t.Fatalf("kind %s guards %v local disk %v, want redis, true, false", l.Kind(), l.Guards(), l.LocalDisk())
	}
	if held := holds(t, l, mr); held == "" {
		t.Fatal("the lock left no key in the redis of registry-config.yml")
	}
	if mr.Exists(keyPrefix + "yocto/x:latest") {
		t.Fatal("the released lock's key is still there")
	}
}

// Choose's rule: redis when the configuration names one, else push.lock
// for a registry served from this storage on this host, else none.
func TestChoose(t *testing.T) {
	mr := miniredis.RunT(t)
	plain := testConfig(t, "", nil)
	withRedis := testConfig(t, "redis:\n  addrs: ["+mr.Addr()+"]\n", nil)
	s3 := testConfig(t, "", config.Vars{"CONTAINER_REGISTRY_BACKEND": "s3://bucket?endpoint=http://127.0.0.1:1"})
	for _, tc := range []struct {
		name  string
		c     *config.Config
		local bool
		want  Kind
		disk  bool
	}{
		{"filesystem served here", plain, true, Flock, true},
		{"filesystem, redis in registry-config.yml", withRedis, true, Redis, true},
		{"replica of a shared backend without redis", s3, true, None, false},
		{"replica elsewhere without redis", s3, false, None, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := regconfig.Read(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			l := Choose(cfg, tc.c.Storage, tc.local)
			defer l.Close()
			if l.Kind() != tc.want || l.LocalDisk() != tc.disk || l.Guards() != (tc.want != None) {
				t.Fatalf("kind %s local disk %v guards %v, want %s %v", l.Kind(), l.LocalDisk(), l.Guards(), tc.want, tc.disk)
			}
			if tc.want == None {
				unlock, err := l.Lock(context.Background(), "yocto/x", "latest")
				if err != nil {
					t.Fatal(err)
				}
				unlock()
				return
			}
			holds(t, l, mr)
			if tc.want == Flock {
				if _, err := os.Stat(filepath.Join(tc.c.Storage, "push.lock")); err != nil {
					t.Fatalf("push.lock: %v", err)
				}
			}
		})
	}
}

// A registry not served from this storage gets no lock, and its
// configuration is not read (a remote registry's pushers share nothing
// with us); nor does a loopback URL count without a registry running from
// the storage.
func TestOpenRemoteIsNone(t *testing.T) {
	for _, host := range []string{"localhost:5000", "127.0.0.1:5000", "[::1]:5000", "registry.example.com:5000"} {
		c := testConfig(t, "not: [valid yaml", config.Vars{"CONTAINER_REGISTRY_URL": host})
		if ServedLocally(c) {
			t.Errorf("%s: no registry runs from %s, want not served locally", host, c.Storage)
		}
		l, err := Open(c)
		if err != nil || l.Kind() != None || l.Guards() {
			t.Errorf("%s: %v %v, want none", host, l.Kind(), err)
		}
	}
	var nilLock *Lock
	if nilLock.Kind() != None || nilLock.Close() != nil {
		t.Error("a nil lock is not none")
	}
}

// push.lock locks each tag on its own: another tag is taken while one is
// held (the images of a push write their tags at once), and a process
// holding the whole file exclusively with flock (as tools before per-tag
// locks did) keeps every tag out until it lets go.
func TestFlockPerTag(t *testing.T) {
	dir := t.TempDir()
	l := &Lock{kind: Flock, path: filepath.Join(dir, "push.lock"), disk: true}
	ctx := context.Background()
	unlock, err := l.Lock(ctx, "yocto/a", "latest")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	other, err := l.Lock(short, "yocto/b", "latest")
	if err != nil {
		t.Fatalf("another tag waited for a held one: %v", err)
	}
	other()
	unlock()

	f, err := os.OpenFile(l.path, os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if again, err := l.Lock(short2, "yocto/a", "latest"); err == nil {
		again()
		t.Fatal("a tag was taken while the whole file was held exclusively")
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	again, err := l.Lock(ctx, "yocto/a", "latest")
	if err != nil {
		t.Fatal(err)
	}
	again()
}
