package oauth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys bounds the addresses the limiter tracks at once.
const maxLimiterKeys = 10000

// keyedLimiter is a token bucket per key (a client address). A bucket idle
// for long enough to have refilled carries no state, so it is dropped.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // time for an empty bucket to refill

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(limit rate.Limit, burst int) *keyedLimiter {
	idle := time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	return &keyedLimiter{limit: limit, burst: burst, idle: max(idle, time.Second), buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket, or says how long to wait.
func (k *keyedLimiter) allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) > k.idle || len(k.buckets) >= maxLimiterKeys {
		k.sweep(now)
	}
	b := k.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, max(d, time.Second)
	}
	return true, 0
}

// sweep drops the buckets idle long enough to be full; if the map is
// still full, it drops arbitrary ones, which only forgives their clients.
func (k *keyedLimiter) sweep(now time.Time) {
	k.lastSweep = now
	for key, b := range k.buckets {
		if now.Sub(b.seen) > k.idle {
			delete(k.buckets, key)
		}
	}
	for key := range k.buckets {
		if len(k.buckets) < maxLimiterKeys {
			break
		}
		delete(k.buckets, key)
	}
}
