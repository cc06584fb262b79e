package ui

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/notifications"
	middleware "github.com/distribution/distribution/v3/registry/middleware/registry"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// middlewareName is the registry middleware through which the site gets
// the application's own namespace and storage driver and hears of every
// change. The site hands itself to it in the middleware's options.
const middlewareName = "ocireg-ui"

func init() {
	if err := middleware.Register(middlewareName, attach); err != nil {
		panic(err)
	}
}

// attach is the middleware's constructor: distribution calls it while
// building the application, with the namespace every request then uses.
func attach(_ context.Context, ns distribution.Namespace, d storagedriver.StorageDriver, opts map[string]any) (distribution.Namespace, error) {
	s, ok := opts["site"].(*Site)
	if !ok || s == nil {
		return nil, fmt.Errorf("registry middleware %s: no site in its options", middlewareName)
	}
	s.ns, s.driver = ns, d
	return &watchNS{Namespace: ns, cache: s.cache}, nil
}

// watchNS passes everything to the namespace below and tells the cache of
// every push and delete, through distribution's own listener hooks (the
// same that drive its notifications).
type watchNS struct {
	distribution.Namespace
	cache *cache
}

func (n *watchNS) Repository(ctx context.Context, name reference.Named) (distribution.Repository, error) {
	repo, err := n.Namespace.Repository(ctx, name)
	if err != nil {
		return nil, err
	}
	rm, _ := n.Namespace.(distribution.RepositoryRemover)
	r, _ := notifications.Listen(repo, rm, listener{n.cache})
	return r, nil
}

// Remove deletes a repository (distribution needs the namespace to be a
// RepositoryRemover to delete at all).
func (n *watchNS) Remove(ctx context.Context, name reference.Named) error {
	rm, ok := n.Namespace.(distribution.RepositoryRemover)
	if !ok {
		return errors.New("the registry's namespace cannot remove repositories")
	}
	err := rm.Remove(ctx, name)
	n.cache.removeRepo(name.Name())
	return err
}

// listener turns repository events into cache invalidation; pulls change
// nothing.
type listener struct{ c *cache }

func (l listener) ManifestPushed(repo reference.Named, _ distribution.Manifest, _ ...distribution.ManifestServiceOption) error {
	l.c.changed(repo.Name())
	return nil
}

func (l listener) ManifestDeleted(repo reference.Named, _ digest.Digest) error {
	l.c.changed(repo.Name())
	return nil
}

func (l listener) TagDeleted(repo reference.Named, _ string) error {
	l.c.changed(repo.Name())
	return nil
}

func (l listener) RepoDeleted(repo reference.Named) error {
	l.c.removeRepo(repo.Name())
	return nil
}

func (l listener) BlobPushed(reference.Named, v1.Descriptor) error {
	l.c.blobsChanged()
	return nil
}

func (l listener) BlobMounted(reference.Named, v1.Descriptor, reference.Named) error {
	l.c.blobsChanged()
	return nil
}

func (l listener) BlobDeleted(reference.Named, digest.Digest) error {
	l.c.blobsChanged()
	return nil
}

func (listener) ManifestPulled(reference.Named, distribution.Manifest, ...distribution.ManifestServiceOption) error {
	return nil
}

func (listener) BlobPulled(reference.Named, v1.Descriptor) error { return nil }
