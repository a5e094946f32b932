package licensing

import (
	"crypto/sha256"
	"sync"
)

// tokenCacheSize bounds each of the two generations of the token cache.
const tokenCacheSize = 1 << 14

// tokenCache remembers the claims of the access tokens this process signed
// or verified, by the SHA-256 of the whole token, so that the next call
// with a token skips the signature check (an ECDSA verification is most
// of the CPU of a refresh). Only what the signature protects is cached:
// expiry, the tenant and the token's place in the activation (its jti) are
// still checked on every call. Two generations bound it: when the current
// one is full it becomes the previous one and the oldest is dropped. Only
// tokens that verified are cached, so garbage cannot fill it. The signing
// keys are loaded once, at New; code that retires a key while the service
// runs must also empty this cache.
type tokenCache struct {
	mu        sync.Mutex
	cur, prev map[[sha256.Size]byte]*tokenClaims
}

func (c *tokenCache) get(token string) *tokenClaims {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v
	}
	if v, ok := c.prev[k]; ok {
		c.putLocked(k, v)
		return v
	}
	return nil
}

func (c *tokenCache) put(token string, claims *tokenClaims) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	c.putLocked(k, claims)
	c.mu.Unlock()
}

func (c *tokenCache) putLocked(k [sha256.Size]byte, v *tokenClaims) {
	if c.cur == nil || len(c.cur) >= tokenCacheSize {
		c.prev, c.cur = c.cur, make(map[[sha256.Size]byte]*tokenClaims, tokenCacheSize/4)
	}
	c.cur[k] = v
}
