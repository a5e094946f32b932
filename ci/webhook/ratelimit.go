package webhook

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate limiting defaults: per source address.
const (
	DefaultRate  = rate.Limit(20) // requests per second
	DefaultBurst = 100

	// limiterIdle is how long an address's limiter is kept after its last
	// request; limiterMax bounds how many are kept at once.
	limiterIdle = 10 * time.Minute
	limiterMax  = 100_000
)

// keyedLimiter is a token bucket per key that forgets idle keys.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	entries   map[string]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(limit rate.Limit, burst int) *keyedLimiter {
	return &keyedLimiter{limit: limit, burst: burst, now: time.Now, entries: make(map[string]*limiterEntry)}
}

// allow reports whether a request from key may go ahead now.
func (k *keyedLimiter) allow(key string) bool {
	if k.limit == rate.Inf {
		return true
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) > limiterIdle || len(k.entries) >= limiterMax {
		k.sweep(now)
	}
	e, ok := k.entries[key]
	if !ok {
		if len(k.entries) >= limiterMax {
			// Every slot is recently used: refuse newcomers rather than
			// grow without bound or reset someone's bucket.
			return false
		}
		e = &limiterEntry{lim: rate.NewLimiter(k.limit, k.burst)}
		k.entries[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// sweep forgets limiters idle for longer than limiterIdle; k.mu is held.
func (k *keyedLimiter) sweep(now time.Time) {
	for key, e := range k.entries {
		if now.Sub(e.seen) > limiterIdle {
			delete(k.entries, key)
		}
	}
	k.lastSweep = now
}

// sourceAddr is the rate-limiting key of a request: the host part of its
// remote address. X-Forwarded-For is not trusted.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
