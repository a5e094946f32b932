package oauth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCacheSize bounds each of the two generations of verifiedCache.
const verifiedCacheSize = 1 << 14

// DefaultRevocationRecheck is the default of Config.RevocationRecheck.
const DefaultRevocationRecheck = 2 * time.Second

// verifiedCache remembers tokens that verified, by the SHA-256 of the
// whole token: a token seen again skips the ES256 signature check (most of
// a verification's CPU) and, for Config.RevocationRecheck after its last
// check, the two store reads that look for its revocation and its
// client's. Expiry is checked on every call. A revocation through this
// server empties the cache at once; one made by another process (`vigil
// clients revoke`, another host) takes effect within RevocationRecheck.
// Only verified tokens are cached, so garbage cannot fill it; two
// generations bound it.
type verifiedCache struct {
	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]*verifiedEntry
}

type verifiedEntry struct {
	claims    Claims
	checkedAt time.Time // of the revocation checks
}

func (c *verifiedCache) get(token string) (Claims, time.Time, bool) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cur[k]
	if !ok {
		if e, ok = c.prev[k]; ok {
			c.putLocked(k, e)
		}
	}
	if !ok {
		return Claims{}, time.Time{}, false
	}
	return e.claims, e.checkedAt, true
}

func (c *verifiedCache) put(token string, claims Claims, checkedAt time.Time) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	c.putLocked(k, &verifiedEntry{claims: claims, checkedAt: checkedAt})
	c.mu.Unlock()
}

func (c *verifiedCache) putLocked(k [sha256.Size]byte, e *verifiedEntry) {
	if c.cur == nil || len(c.cur) >= verifiedCacheSize {
		c.prev, c.cur = c.cur, make(map[[sha256.Size]byte]*verifiedEntry, verifiedCacheSize/4)
	}
	c.cur[k] = e
}

// clear forgets every token, after a revocation.
func (c *verifiedCache) clear() {
	c.mu.Lock()
	c.cur, c.prev = nil, nil
	c.mu.Unlock()
}
