package ui

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// maxAge bounds how long a cached catalog or tag list is trusted without
// an event: replicas sharing a storage (and offline tools) change it
// without this process hearing of it.
const maxAge = time.Minute

// cache holds what the pages show. Every push and delete through this
// registry invalidates the repository it touched (and the catalog when the
// repository is new or removed); parsed manifests and configs are kept by
// digest, which names immutable content, so they never go stale: within a
// byte budget (cacheBytes), and dropped when their digest is deleted.
type cache struct {
	mu  sync.Mutex
	seq uint64 // counts changes; an entry built at seq s is valid while no change came after s

	catalog     []string
	known       map[string]bool // the names in catalog
	catalogSeq  uint64
	catalogAt   time.Time
	catalogGone uint64 // seq of the last change that makes the catalog stale

	repos     map[string]*repoRows
	changedAt map[string]uint64

	parsed *lru // *Image and *configEntry by digest

	stats      *Stats
	statsSeq   uint64
	blobsAt    uint64 // seq of the last blob change
	statsBuilt time.Time
}

func newCache() *cache {
	return &cache{repos: map[string]*repoRows{}, changedAt: map[string]uint64{}, parsed: newLRU(cacheBytes)}
}

// changed records a push or delete in repo. The catalog is listed again
// when repo is new to it; removeRepo covers a repository that goes.
func (c *cache) changed(repo string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.changedAt[repo] = c.seq
	c.blobsAt = c.seq
	if !c.known[repo] {
		c.catalogGone = c.seq
	}
	delete(c.repos, repo)
}

// removeRepo records that repo was removed.
func (c *cache) removeRepo(repo string) {
	c.changed(repo)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.catalogGone = c.seq
}

// blobsChanged records a blob upload, mount or delete: only the storage
// figures change.
func (c *cache) blobsChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.blobsAt = c.seq
}

// now returns the current change count, to stamp an entry about to be
// built.
func (c *cache) now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// getCatalog returns the cached catalog, or nil when it must be listed.
func (c *cache) getCatalog() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.catalog == nil || c.catalogSeq < c.catalogGone || time.Since(c.catalogAt) > maxAge {
		return nil
	}
	return c.catalog
}

func (c *cache) putCatalog(names []string, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if names == nil {
		names = []string{}
	}
	c.known = make(map[string]bool, len(names))
	for _, n := range names {
		c.known[n] = true
	}
	c.catalog, c.catalogSeq, c.catalogAt = names, seq, time.Now()
}

// getRepo returns the cached tags of repo, or nil.
func (c *cache) getRepo(name string) *repoRows {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.repos[name]
	if r == nil || r.seq < c.changedAt[name] || time.Since(r.built) > maxAge {
		return nil
	}
	return r
}

// putRepo stores r unless repo changed since r's build began.
func (c *cache) putRepo(r *repoRows) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.seq >= c.changedAt[r.Name] {
		c.repos[r.Name] = r
	}
}

func (c *cache) getImage(d digest.Digest) *Image {
	v, _ := c.parsed.get(lruKey{kindImage, d})
	im, _ := v.(*Image)
	return im
}

func (c *cache) putImage(im *Image) {
	c.parsed.put(lruKey{kindImage, im.Digest}, im, im.bytes())
}

func (c *cache) getConfig(d digest.Digest) *configEntry {
	v, _ := c.parsed.get(lruKey{kindConfig, d})
	ce, _ := v.(*configEntry)
	return ce
}

func (c *cache) putConfig(d digest.Digest, ce *configEntry) {
	c.parsed.put(lruKey{kindConfig, d}, ce, ce.bytes())
}

// deleted drops what was read of d (a manifest or blob deleted).
func (c *cache) deleted(d digest.Digest) {
	c.parsed.evict(d)
}

func (c *cache) getStats() *Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats == nil || c.statsSeq < c.blobsAt || time.Since(c.statsBuilt) > maxAge {
		return nil
	}
	return c.stats
}

func (c *cache) putStats(s *Stats, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats, c.statsSeq, c.statsBuilt = s, seq, time.Now()
}
