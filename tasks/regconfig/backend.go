package regconfig

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"

	// The shared object storage of CONTAINER_REGISTRY_BACKEND.

	"github.com/ocireg-tool/ocireg-tool/config"
)

// applyBackend makes the storage and redis sections agree with
// CONTAINER_REGISTRY_BACKEND and CONTAINER_REGISTRY_REDIS:
//
//   - a backend replaces the file's storage driver with s3 on that bucket
//     (path-style, region, endpoint; TLS against ca= through the AWS SDK's
//     AWS_CA_BUNDLE); storage.redirect.disable is set unless the file says
//     otherwise (clients and targets reach the registry, not necessarily the
//     bucket); the other storage keys (delete, maintenance, ...) stay;
//   - credentials come from CONTAINER_REGISTRY_BACKEND_CREDENTIALS into the
//     in-memory configuration only (never into a file or the log), else the
//     AWS SDK reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY itself;
//   - redis sets redis.addrs and db, and the redis blob descriptor cache.
func applyBackend(c *config.Config, cfg *configuration.Configuration) ([]Adjustment, error) {
	var adj []Adjustment
	secrets, err := c.ReadBackendCredentials()
	if err != nil {
		return nil, err
	}
	if b := c.Backend; b.S3() {
		params := s3Params(b)
		if secrets.AccessKey != "" {
			params["accesskey"], params["secretkey"] = secrets.AccessKey, secrets.SecretKey
			if secrets.SessionToken != "" {
				params["sessiontoken"] = secrets.SessionToken
			}
		}
		if typ := cfg.Storage.Type(); typ != "s3" {
			delete(cfg.Storage, typ)
			adj = append(adj, Adjustment(fmt.Sprintf("storage.%s replaced by storage.s3 (CONTAINER_REGISTRY_BACKEND=%s)", typ, b)))
		}
		cfg.Storage["s3"] = params
		if _, ok := cfg.Storage["redirect"]; !ok {
			cfg.Storage["redirect"] = configuration.Parameters{"disable": true}
		}
		if b.CA != "" {
			// The AWS SDK reads the bundle without a limit: it gets
			// only a file that passed the bounded check.
			if err := b.CheckCA(); err != nil {
				return nil, err
			}
			if err := os.Setenv("AWS_CA_BUNDLE", b.CA); err != nil {
				return nil, err
			}
		}
	}
	if r := c.Redis; r.Set() {
		cfg.Redis.Options.Addrs = []string{r.Addr}
		cfg.Redis.Options.DB = r.DB
		if secrets.RedisPassword != "" {
			cfg.Redis.Options.Password = secrets.RedisPassword
		}
		if cfg.Storage["cache"] == nil {
			cfg.Storage["cache"] = configuration.Parameters{}
		}
		delete(cfg.Storage["cache"], "layerinfo")
		cfg.Storage["cache"]["blobdescriptor"] = "redis"
		adj = append(adj, Adjustment(fmt.Sprintf("redis %s (db %d): blob descriptor cache (CONTAINER_REGISTRY_REDIS)", r.Addr, r.DB)))
	}
	return adj, nil
}

// The s3 driver's transfer settings, stated rather than left to
// distribution's defaults (they are those defaults: of the alternatives
// tried on SeaweedFS, a 256 MiB ingest each, none did better; see
// BENCHMARKS.md, s3 notes):
//
//   - an upload is written in parts of s3ChunkSize, each buffered in the
//     server's memory while it is sent (several uploads at once each hold
//     one): 32 and 64 MiB parts ingested no faster, so the smaller memory;
//   - an upload becomes its blob by a copy within the bucket (S3 has no
//     rename): above s3CopyThreshold as a multipart copy in parts of
//     s3CopyPart, s3CopyParallel at once, which took half the time of one
//     CopyObject of the whole blob; 8 and 16 MiB copy parts were no faster.
const (
	s3ChunkSize     = 10 << 20
	s3CopyThreshold = 32 << 20
	s3CopyPart      = 32 << 20
	s3CopyParallel  = 100
)

// s3Params are the s3 driver's parameters for b, without credentials.
func s3Params(b config.Backend) configuration.Parameters {
	p := configuration.Parameters{
		"bucket":                      b.Bucket,
		"region":                      b.Region,
		"forcepathstyle":              !b.VirtualHost,
		"v4auth":                      true,
		"secure":                      true,
		"chunksize":                   s3ChunkSize,
		"multipartcopythresholdsize":  s3CopyThreshold,
		"multipartcopychunksize":      s3CopyPart,
		"multipartcopymaxconcurrency": s3CopyParallel,
	}
	if b.Prefix != "" {
		p["rootdirectory"] = "/" + b.Prefix
	}
	if b.Endpoint != "" {
		p["regionendpoint"] = b.Endpoint
		if u, err := url.Parse(b.Endpoint); err == nil && u.Scheme == "http" {
			p["secure"] = false
		}
	}
	return p
}

// S3 reports whether cfg stores the registry in an S3 bucket.
func S3(cfg *configuration.Configuration) bool {
	return slices.Contains([]string{"s3", "s3aws"}, cfg.Storage.Type())
}

// SharedPrefix is where the tool keeps its own objects in a shared
// backend, beside distribution's /docker tree (which gc and verify walk;
// this tree is never part of it).
const SharedPrefix = "/ocireg-tool"

// sharedSecretPath is the upload secret every replica of a backend uses:
// an upload begun on one replica can finish on another.
const sharedSecretPath = SharedPrefix + "/http.secret"

// ensureSharedSecret returns the upload secret stored in the backend,
// creating it when missing. Two replicas starting at once may both write
// one; each reads back what the backend then holds after a pause, so
// they settle on the last one written.
func ensureSharedSecret(ctx context.Context, d driver.StorageDriver) (string, error) {
	data, err := d.GetContent(ctx, sharedSecretPath)
	if err == nil && strings.TrimSpace(string(data)) != "" {
		return strings.TrimSpace(string(data)), nil
	}
	var nf driver.PathNotFoundError
	if err != nil && !errors.As(err, &nf) {
		if strings.Contains(err.Error(), "NoCredentialProviders") {
			return "", fmt.Errorf("reading the shared upload secret %s from the backend: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or CONTAINER_REGISTRY_BACKEND_CREDENTIALS to a 0600 file of them", sharedSecretPath)
		}
		return "", fmt.Errorf("reading the shared upload secret %s from the backend: %w", sharedSecretPath, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("creating http secret: %w", err)
	}
	if err := d.PutContent(ctx, sharedSecretPath, []byte(hex.EncodeToString(b)+"\n")); err != nil {
		return "", fmt.Errorf("writing the shared upload secret %s to the backend: %w", sharedSecretPath, err)
	}
	time.Sleep(secretSettle)
	data, err = d.GetContent(ctx, sharedSecretPath)
	if err != nil {
		return "", fmt.Errorf("reading back the shared upload secret %s: %w", sharedSecretPath, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// secretSettle is how long a replica that wrote the shared secret waits
// before reading it back.
const secretSettle = 200 * time.Millisecond
