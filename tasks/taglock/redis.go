package taglock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// lockTTL bounds how long a redis lock outlives a push that died holding
// it (SET NX with an expiry); an index read-modify-write takes
// milliseconds.
const lockTTL = 30 * time.Second

// keyPrefix is where the tag locks live in redis.
const keyPrefix = "ocireg-tool:push-lock:"

// releaseScript deletes the key only when it still holds our token: a lock
// is released only by its holder.
var releaseScript = goredis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// redisLock takes the lock of key in cl, waiting until ctx ends.
func redisLock(ctx context.Context, cl *goredis.Client, key string) (func(), error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	key = keyPrefix + key
	for {
		ok, err := cl.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("taking the push lock in redis: %w", err)
		}
		if ok {
			return func() { _ = releaseScript.Run(context.WithoutCancel(ctx), cl, []string{key}, token).Err() }, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the push lock %s in redis: %w", key, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}
