// Package tokencache remembers what a server learnt about the bearer
// tokens it signed or verified, by the SHA-256 of the whole token, so that
// the next request with a token skips its signature check. Only tokens
// that verified are put, so garbage cannot fill it; two generations of
// Size entries bound it: when the current one is full it becomes the
// previous one and the oldest is dropped, and a hit in the previous one
// moves the entry back to the current one.
package tokencache

import (
	"crypto/sha256"
	"sync"
)

// Size bounds each of the two generations.
const Size = 1 << 14

// Cache maps tokens to V. The zero value is ready to use and safe for
// concurrent use.
type Cache[V any] struct {
	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]V
}

// Get returns what was put for the token.
func (c *Cache[V]) Get(token string) (V, bool) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	if ok {
		c.putLocked(k, v)
	}
	return v, ok
}

// Put remembers v for the token.
func (c *Cache[V]) Put(token string, v V) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	c.putLocked(k, v)
	c.mu.Unlock()
}

func (c *Cache[V]) putLocked(k [sha256.Size]byte, v V) {
	if c.cur == nil || len(c.cur) >= Size {
		c.prev, c.cur = c.cur, make(map[[sha256.Size]byte]V, Size/4)
	}
	c.cur[k] = v
}

// Clear forgets every token (after a revocation, a key retired).
func (c *Cache[V]) Clear() {
	c.mu.Lock()
	c.cur, c.prev = nil, nil
	c.mu.Unlock()
}

// Len is how many tokens it holds.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
