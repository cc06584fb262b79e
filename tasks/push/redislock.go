package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// redisLock serialises the index read-modify-writes of every push to the
// replicas of a shared backend, from any host: one redis key per tag
// (SET NX with an expiry, so a push killed while holding it blocks others
// for lockTTL at most), released only by its holder.
type redisLock struct{ cl *redis.Client }

// lockTTL bounds how long a lock outlives a push that died holding it; an
// index read-modify-write takes milliseconds.
const lockTTL = 30 * time.Second

// newRedisLock connects to CONTAINER_REGISTRY_REDIS (nil when unset).
func newRedisLock(c *config.Config) (*redisLock, error) {
	if !c.Redis.Set() {
		return nil, nil
	}
	secrets, err := c.ReadBackendCredentials()
	if err != nil {
		return nil, err
	}
	return &redisLock{cl: redis.NewClient(&redis.Options{Addr: c.Redis.Addr, DB: c.Redis.DB, Password: secrets.RedisPassword})}, nil
}

// releaseScript deletes the key only when it still holds our token.
var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// lock takes the lock of key, waiting until ctx ends.
func (l *redisLock) lock(ctx context.Context, key string) (func(), error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	key = "ocireg-tool:push-lock:" + key
	for {
		ok, err := l.cl.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("taking the push lock in redis: %w", err)
		}
		if ok {
			return func() { _ = releaseScript.Run(context.WithoutCancel(ctx), l.cl, []string{key}, token).Err() }, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the push lock %s in redis: %w", key, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func (l *redisLock) close() {
	if l != nil {
		l.cl.Close()
	}
}
