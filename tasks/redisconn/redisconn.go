// Package redisconn is the tool's one owner of redis: which server (the
// redis section of the registry configuration, which regconfig fills from
// CONTAINER_REGISTRY_REDIS, or a redis named only in registry-config.yml),
// the client, and what the tool keeps there besides distribution's blob
// descriptor cache: the claim of a database by one backend and the push
// locks (package taglock).
package redisconn

import (
	"context"
	"fmt"
	"slices"

	"github.com/distribution/distribution/v3/configuration"
	goredis "github.com/redis/go-redis/v9"
)

// Configured reports whether cfg names a redis server.
func Configured(cfg *configuration.Configuration) bool {
	return cfg != nil && len(cfg.Redis.Options.Addrs) > 0
}

// Open returns a client of cfg's redis server, or nil when cfg names none.
// The caller closes it.
func Open(cfg *configuration.Configuration) *goredis.Client {
	if !Configured(cfg) {
		return nil
	}
	o := cfg.Redis.Options
	return goredis.NewClient(&goredis.Options{Addr: o.Addrs[0], DB: o.DB, Username: o.Username, Password: o.Password})
}

// where names cfg's redis database for messages.
func where(cfg *configuration.Configuration) string {
	o := cfg.Redis.Options
	return fmt.Sprintf("redis %s (db %d)", o.Addrs[0], o.DB)
}

// ownerKey names the backend whose blob descriptors a redis database
// caches. distribution's cache has no key prefix: registries on different
// storage sharing one database would answer for each other's blobs (a
// push then skips uploads the registry does not have).
const ownerKey = "ocireg-tool:backend"

// Claim records backend (an identity, see config.Backend.Identity) as the
// owner of cfg's redis database, or fails when another backend owns it.
// Without redis it does nothing.
func Claim(ctx context.Context, cfg *configuration.Configuration, backend string) error {
	cl := Open(cfg)
	if cl == nil {
		return nil
	}
	defer cl.Close()
	if err := cl.SetNX(ctx, ownerKey, backend, 0).Err(); err != nil {
		return fmt.Errorf("%s: %w", where(cfg), err)
	}
	owner, err := cl.Get(ctx, ownerKey).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", where(cfg), err)
	}
	if owner != backend {
		o := cfg.Redis.Options
		return fmt.Errorf("CONTAINER_REGISTRY_REDIS: database %d of %s caches the blobs of another storage (%s); give each backend a database of its own (host:port/db)", o.DB, o.Addrs[0], owner)
	}
	return nil
}

// PurgeBlobDescriptors removes distribution's blob descriptors from cfg's
// redis cache (none: nothing to do); the cache fills again from storage.
// A collection calls it after removing blobs, which the cache would go on
// answering for.
func PurgeBlobDescriptors(ctx context.Context, cfg *configuration.Configuration) error {
	cl := Open(cfg)
	if cl == nil {
		return nil
	}
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
