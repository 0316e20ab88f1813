package store

import (
	"bytes"
	"slices"
	"sort"
	"strings"
)

// KV is a writable view of the state.
type KV interface {
	Reader
	Set(key, value []byte)
	Delete(key []byte)
}

// Cache buffers writes over a parent Reader. Branch makes a nested cache
// whose writes reach this one only on Write, so a failed call's writes are
// simply dropped. A Cache is not safe for concurrent use.
type Cache struct {
	parent Reader
	writes map[string][]byte // nil value = deleted
}

var _ KV = (*Cache)(nil)

// NewCache returns an empty cache over parent.
func NewCache(parent Reader) *Cache {
	return &Cache{parent: parent, writes: make(map[string][]byte)}
}

// Get returns the value of key, or nil if absent.
func (c *Cache) Get(key []byte) ([]byte, error) {
	if v, ok := c.writes[string(key)]; ok {
		return bytes.Clone(v), nil
	}
	return c.parent.Get(key)
}

// Iterate calls fn for each key with prefix, in key order, until fn returns
// false: the parent's keys merged with this cache's writes, which replace
// or delete them. The result depends only on the parent's state and the
// writes, never on the order the writes were made, so every validator
// scans the same keys.
func (c *Cache) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	own := make([]Change, 0)
	for k, v := range c.writes {
		if strings.HasPrefix(k, string(prefix)) {
			own = append(own, Change{Key: []byte(k), Value: v})
		}
	}
	slices.SortFunc(own, func(a, b Change) int { return bytes.Compare(a.Key, b.Key) })
	stopped := false
	// emit passes on one of this cache's writes; a deletion hides the key.
	emit := func(w Change) bool {
		if w.Value == nil {
			return true
		}
		if !fn(w.Key, bytes.Clone(w.Value)) {
			stopped = true
		}
		return !stopped
	}
	err := c.parent.Iterate(prefix, func(key, value []byte) bool {
		for len(own) > 0 && bytes.Compare(own[0].Key, key) < 0 {
			w := own[0]
			own = own[1:]
			if !emit(w) {
				return false
			}
		}
		if len(own) > 0 && bytes.Equal(own[0].Key, key) {
			w := own[0]
			own = own[1:]
			return emit(w)
		}
		if !fn(key, value) {
			stopped = true
		}
		return !stopped
	})
	if err != nil {
		return err
	}
	for _, w := range own {
		if stopped || !emit(w) {
			break
		}
	}
	return nil
}

// Set writes value (a nil value is stored as empty).
func (c *Cache) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	c.writes[string(key)] = bytes.Clone(value)
}

// Delete removes key.
func (c *Cache) Delete(key []byte) { c.writes[string(key)] = nil }

// Branch returns a nested cache over c.
func (c *Cache) Branch() *Cache { return NewCache(c) }

// Write flushes the writes of a branch into its parent cache. It does nothing
// for a cache over the committed store: use Changes and Store.Prepare there.
func (c *Cache) Write() {
	p, ok := c.parent.(*Cache)
	if !ok {
		return
	}
	for k, v := range c.writes {
		p.writes[k] = v
	}
	clear(c.writes)
}

// Changes returns the buffered writes sorted by key.
func (c *Cache) Changes() []Change {
	out := make([]Change, 0, len(c.writes))
	for k, v := range c.writes {
		out = append(out, Change{Key: []byte(k), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}
