// Package taglock is the lock around the read-modify-write of a tag's
// index (push's merged index of a tag, the referrers tag of a subject),
// chosen once per push for the registry pushed to:
//
//   - redis, when the registry's configuration (registry-config.yml as
//     regconfig reads it, CONTAINER_REGISTRY_REDIS applied) names a redis
//     server: one key per tag, shared by the pushes through every replica
//     of a shared backend, from any host;
//   - else the storage's push.lock (a byte-range lock per tag under a
//     shared flock of the file, flock.go), when
//     the registry is served from this storage directory on this host
//     (its data on this file system): every push to it from here takes it;
//   - else none: a registry whose other pushers share no lock with us (a
//     remote registry, or replicas without redis); push then reads its tags
//     back after a pause instead.
//
// It takes and releases locks; what a lock guards is its callers'
// business (package push).
package taglock

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/distribution/distribution/v3/configuration"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/redisconn"
	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Kind names a lock.
type Kind string

// The kinds of lock.
const (
	None  Kind = "none"
	Flock Kind = "flock"
	Redis Kind = "redis"
)

// Lock is the tag lock of one registry. A nil *Lock is None.
type Lock struct {
	kind  Kind
	path  string          // Flock: the lock file
	redis *goredis.Client // Redis
	// disk says the registry keeps its data in the storage directory on
	// this host.
	disk bool
}

// Open chooses the lock of the registry at c's URL (see the package
// comment). The registry configuration is read only for a registry served
// from c's storage: on this host from its directory, or any replica of
// c's shared backend (CONTAINER_REGISTRY_BACKEND).
func Open(c *config.Config) (*Lock, error) {
	local := ServedLocally(c)
	if !local && !c.Backend.S3() {
		return &Lock{kind: None}, nil
	}
	cfg, _, err := regconfig.Read(c)
	if err != nil {
		return nil, fmt.Errorf("choosing the push lock: %w", err)
	}
	return Choose(cfg, c.Storage, local), nil
}

// Choose is Open's rule for cfg, the configuration of a registry served
// from storage; local says it runs on this host from that directory. The
// caller closes the lock.
func Choose(cfg *configuration.Configuration, storage string, local bool) *Lock {
	disk := local && !regconfig.S3(cfg)
	switch {
	case redisconn.Configured(cfg):
		return &Lock{kind: Redis, redis: redisconn.Open(cfg), disk: disk}
	case disk:
		return &Lock{kind: Flock, path: filepath.Join(storage, "push.lock"), disk: true}
	}
	return &Lock{kind: None}
}

// ServedLocally reports whether c's URL is the registry started from c's
// storage on this host (a loopback host, and a registry of c's port
// running).
func ServedLocally(c *config.Config) bool {
	return config.IsLoopbackHost(c.Host) && runstate.Check(c).Pid != 0
}

// Kind says which lock l is.
func (l *Lock) Kind() Kind {
	if l == nil {
		return None
	}
	return l.kind
}

// Guards reports whether every push to the registry takes this lock around
// its read-modify-writes, so none can drop another's entries.
func (l *Lock) Guards() bool { return l.Kind() != None }

// LocalDisk reports whether the registry keeps its data in the storage
// directory on this host (so its file system's free space is the
// registry's).
func (l *Lock) LocalDisk() bool { return l != nil && l.disk }

// Lock takes the lock of repo's tag (a repository path without the
// registry's address: every replica's pushes share it), waiting until ctx
// ends, and returns its release.
func (l *Lock) Lock(ctx context.Context, repo, tag string) (unlock func(), err error) {
	switch l.Kind() {
	case Redis:
		return redisLock(ctx, l.redis, repo+":"+tag)
	case Flock:
		f, err := lockFile(ctx, l.path, repo+":"+tag)
		if err != nil {
			return nil, err
		}
		return f.unlock, nil
	}
	return func() {}, nil
}

// Close lets the lock's connections go.
func (l *Lock) Close() error {
	if l == nil || l.redis == nil {
		return nil
	}
	return l.redis.Close()
}
