// Package regstore owns the registry's storage as the tool reaches it
// beside distribution's application: which storage drivers are compiled
// in, the one place a driver is created, and distribution's on-disk
// layout (where repositories, tags, uploads and blob data live).
//
// gc, verify, the replica protocol, the referrers records and the
// registry browser all go through it; none spells a storage path itself.
package regstore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"syscall"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	// The storage drivers a registry-config.yml may name (Drivers).
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/redirect"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// Drivers are the storage drivers compiled into the tool.
var Drivers = []string{"filesystem", "inmemory", "s3", "s3aws"}

// Open creates the storage driver cfg names.
func Open(ctx context.Context, cfg *configuration.Configuration) (driver.StorageDriver, error) {
	return OpenDriver(ctx, cfg.Storage.Type(), cfg.Storage.Parameters())
}

// OpenDriver creates the storage driver typ with params.
func OpenDriver(ctx context.Context, typ string, params map[string]any) (driver.StorageDriver, error) {
	d, err := factory.Create(ctx, typ, params)
	if err != nil {
		return nil, fmt.Errorf("opening %s storage: %w", typ, err)
	}
	return d, nil
}

// IsNotFound reports whether err is a storage driver's "no such path".
func IsNotFound(err error) bool {
	var nf driver.PathNotFoundError
	return errors.As(err, &nf)
}

// IsFull reports whether err is a storage driver's "no space left on
// device" (distribution's driver.Error does not unwrap its detail).
func IsFull(err error) bool {
	var de driver.Error
	if errors.As(err, &de) {
		err = de.Detail
	}
	return errors.Is(err, syscall.ENOSPC)
}

// distribution's storage layout (registry/storage/paths.go).
const (
	// Root holds everything distribution stores.
	Root = "/docker/registry/v2"
	// Repositories holds one directory per repository.
	Repositories = Root + "/repositories"
	// Blobs holds the content-addressed blob data.
	Blobs = Root + "/blobs"
)

// Repository is the directory of repository repo.
func Repository(repo string) string { return path.Join(Repositories, repo) }

// Tags is the directory of repo's tags.
func Tags(repo string) string { return path.Join(Repositories, repo, "_manifests/tags") }

// Tag is the directory of repo's tag.
func Tag(repo, tag string) string { return path.Join(Tags(repo), tag) }

// TagCurrentLink is the file naming the manifest repo's tag points at. It
// is written when the tag is pushed, so its time is the push time (the API
// has no such field).
func TagCurrentLink(repo, tag string) string { return path.Join(Tag(repo, tag), "current/link") }

// BlobDir is the directory of blob dgst ("<alg>:<hex>").
func BlobDir(alg, hex string) string { return path.Join(Blobs, alg, hex[:2], hex) }

// BlobData is the file holding blob dgst's content.
func BlobData(alg, hex string) string { return path.Join(BlobDir(alg, hex), "data") }
