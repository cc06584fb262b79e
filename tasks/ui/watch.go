package ui

import (
	"context"
	"errors"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/notifications"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Attach gives the site the application's own namespace and storage
// driver, and returns the namespace that tells the site's cache of every
// push and delete: the application must use it (regstore.Capture.Wrap).
func (s *Site) Attach(ns distribution.Namespace, d storagedriver.StorageDriver) distribution.Namespace {
	s.ns, s.driver = ns, d
	return &watchNS{Namespace: ns, cache: s.cache}
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

func (l listener) ManifestDeleted(repo reference.Named, d digest.Digest) error {
	l.c.deleted(d)
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

func (l listener) BlobDeleted(_ reference.Named, d digest.Digest) error {
	l.c.deleted(d)
	l.c.blobsChanged()
	return nil
}

func (listener) ManifestPulled(reference.Named, distribution.Manifest, ...distribution.ManifestServiceOption) error {
	return nil
}

func (listener) BlobPulled(reference.Named, v1.Descriptor) error { return nil }
