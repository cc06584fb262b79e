package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/redis/go-redis/v9"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/regstore"
)

// WritesHeld is emitted when every live replica of a shared backend holds
// its writes for the sweep (instead of stopping the registry).
type WritesHeld struct {
	Backend  string
	Replicas []string
}

// WritesResumed is emitted when the replicas take writes again.
type WritesResumed struct{}

// ackWait bounds how long gc waits for the replicas to hold their writes.
var ackWait = 60 * time.Second

// gcGrace protects what was written shortly before a gc on a shared
// backend: blob data and uploads younger than this are kept. A push on
// another replica may have uploaded a blob whose manifest it has not put
// yet (writes are held mid-push); the mark phase sees no reference to it.
const gcGrace = time.Hour

// holdWrites makes every live replica of the shared backend hold its
// writes: it stands a gc request in the backend (kept fresh while the
// sweep runs) and waits until each replica has acknowledged it. The
// returned function withdraws the request, after purging the redis blob
// descriptor cache, which would otherwise answer for removed blobs.
func holdWrites(ctx context.Context, c *config.Config, cfg *configuration.Configuration, o GCOptions) (func() error, error) {
	d, err := regstore.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	req := GCRequest{ID: hex.EncodeToString(b), Host: host, Started: time.Now().UTC()}
	data, _ := json.Marshal(req)
	if err := d.PutContent(ctx, gcRequest, data); err != nil {
		return nil, fmt.Errorf("asking the replicas of %s to hold writes: %w", c.Backend, err)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		for {
			select {
			case <-rctx.Done():
				return
			case <-time.After(heartbeat):
				_ = d.PutContent(rctx, gcRequest, data)
			}
		}
	}()
	withdraw := func() error {
		stop()
		<-refreshed
		err := purgeRedisCache(context.WithoutCancel(ctx), cfg)
		if derr := d.Delete(context.WithoutCancel(ctx), gcRequest); derr != nil {
			err = errors.Join(err, fmt.Errorf("withdrawing the gc request %s: %w (replicas resume writes after %s)", gcRequest, derr, gcStale))
		}
		o.Events.Emit(WritesResumed{})
		return err
	}
	ids, err := waitAcks(ctx, d, req.ID)
	if err != nil {
		return nil, errors.Join(err, withdraw())
	}
	o.Events.Emit(WritesHeld{Backend: c.Backend.String(), Replicas: ids})
	return withdraw, nil
}

// waitAcks waits until every live replica has acknowledged request id and
// returns their ids.
func waitAcks(ctx context.Context, d driver.StorageDriver, id string) ([]string, error) {
	deadline := time.Now().Add(ackWait)
	for {
		live, err := Replicas(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("listing the replicas: %w", err)
		}
		var ids, waiting []string
		for _, r := range live {
			ids = append(ids, r.ID)
			ack, err := d.GetContent(ctx, path.Join(gcAcksDir, r.ID))
			if err != nil || string(ack) != id {
				waiting = append(waiting, r.URL+" ("+r.ID+")")
			}
		}
		if len(waiting) == 0 {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replicas did not hold their writes within %s: %s; nothing was collected", ackWait, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(clusterPoll):
		}
	}
}

// purgeRedisCache removes distribution's blob descriptors from the redis
// cache of cfg (none: nothing to do); the cache fills again from storage.
func purgeRedisCache(ctx context.Context, cfg *configuration.Configuration) error {
	opts := cfg.Redis.Options
	if len(opts.Addrs) == 0 {
		return nil
	}
	cl := redis.NewClient(&redis.Options{Addr: opts.Addrs[0], DB: opts.DB, Username: opts.Username, Password: opts.Password})
	defer cl.Close()
	for _, pattern := range []string{"blobs::*", "repository::*"} {
		iter := cl.Scan(ctx, 0, pattern, 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("purging the redis blob descriptor cache: %w", err)
		}
		for chunk := range slices.Chunk(keys, 500) {
			if err := cl.Del(ctx, chunk...).Err(); err != nil {
				return fmt.Errorf("purging the redis blob descriptor cache: %w", err)
			}
		}
	}
	return nil
}

// young reports whether the blob data or upload at p (a directory the
// sweep removes) was written after keepAfter.
func (r *recordingDriver) young(ctx context.Context, p string) bool {
	if r.keepAfter.IsZero() {
		return false
	}
	var file string
	switch {
	case strings.Contains(p, "/_uploads/"):
		file = path.Join(p, "startedat")
	case strings.HasPrefix(p, blobsPath+"/"):
		file = path.Join(p, "data")
	default:
		return false
	}
	fi, err := r.StorageDriver.Stat(ctx, file)
	return err == nil && fi.ModTime().After(r.keepAfter)
}

// redisOwnerKey names the backend whose blob descriptors a redis
// database caches. distribution's cache has no key prefix: registries on
// different storage sharing one database would answer for each other's
// blobs (a push then skips uploads the registry does not have).
const redisOwnerKey = "ocireg-tool:backend"

// claimRedis records b as the owner of cfg's redis database, or fails
// when another backend owns it.
func claimRedis(ctx context.Context, cfg *configuration.Configuration, b config.Backend) error {
	opts := cfg.Redis.Options
	if len(opts.Addrs) == 0 {
		return nil
	}
	cl := redis.NewClient(&redis.Options{Addr: opts.Addrs[0], DB: opts.DB, Username: opts.Username, Password: opts.Password})
	defer cl.Close()
	id := b.Identity()
	if err := cl.SetNX(ctx, redisOwnerKey, id, 0).Err(); err != nil {
		return fmt.Errorf("redis %s (db %d): %w", opts.Addrs[0], opts.DB, err)
	}
	owner, err := cl.Get(ctx, redisOwnerKey).Result()
	if err != nil {
		return fmt.Errorf("redis %s (db %d): %w", opts.Addrs[0], opts.DB, err)
	}
	if owner != id {
		return fmt.Errorf("CONTAINER_REGISTRY_REDIS: database %d of %s caches the blobs of another storage (%s); give each backend a database of its own (host:port/db)", opts.DB, opts.Addrs[0], owner)
	}
	return nil
}
