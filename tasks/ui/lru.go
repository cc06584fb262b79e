package ui

import (
	"container/list"
	"sync"

	"github.com/opencontainers/go-digest"
)

// cacheBytes bounds what the pages keep of parsed manifests and configs
// (an estimate of the bytes they hold), least recently used out first.
const cacheBytes = 64 << 20

// kind tells what a cached digest was read as: the same bytes can be a
// manifest in one place and a config blob in another.
type kind uint8

const (
	kindImage kind = iota
	kindConfig
)

type lruKey struct {
	kind kind
	d    digest.Digest
}

type lruEntry struct {
	key  lruKey
	val  any
	size int64
}

// lru is a cache by digest with a budget in bytes: what a digest names
// never changes, so entries go only when the budget needs room or the
// digest is deleted.
type lru struct {
	mu     sync.Mutex
	budget int64
	used   int64
	order  *list.List // front: most recently used
	items  map[lruKey]*list.Element
}

func newLRU(budget int64) *lru {
	return &lru{budget: budget, order: list.New(), items: map[lruKey]*list.Element{}}
}

func (l *lru) get(k lruKey) (any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.items[k]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*lruEntry).val, true
}

// put keeps v of size bytes, dropping the least recently used entries to
// stay within the budget; a value larger than the whole budget is not kept.
func (l *lru) put(k lruKey, v any, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.items[k]; ok {
		l.remove(e)
	}
	if size > l.budget {
		return
	}
	l.items[k] = l.order.PushFront(&lruEntry{key: k, val: v, size: size})
	l.used += size
	for l.used > l.budget {
		l.remove(l.order.Back())
	}
}

// evict drops every entry of d.
func (l *lru) evict(d digest.Digest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []kind{kindImage, kindConfig} {
		if e, ok := l.items[lruKey{k, d}]; ok {
			l.remove(e)
		}
	}
}

func (l *lru) remove(e *list.Element) {
	ent := l.order.Remove(e).(*lruEntry)
	delete(l.items, ent.key)
	l.used -= ent.size
}

// bytes is what the cache holds now.
func (l *lru) bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}
