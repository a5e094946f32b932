package httpx

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of RateLimiterConfig.
const (
	DefaultRateLimitMaxKeys = 10_000
	DefaultRateLimitTTL     = 10 * time.Minute
)

// RateLimiterConfig configures NewRateLimiter.
type RateLimiterConfig struct {
	// Rate is the sustained number of requests per second each key may
	// make, and Burst how many it may make at once.
	Rate  rate.Limit
	Burst int
	// MaxKeys bounds memory: past it the least recently seen key is
	// forgotten (DefaultRateLimitMaxKeys if zero).
	MaxKeys int
	// TTL forgets keys not seen for that long (DefaultRateLimitTTL if zero).
	TTL time.Duration
}

// RateLimiter is a token bucket per key (a client IP, a client ID), with
// the keys kept in an LRU list bounded in size and age. It is safe for
// concurrent use.
type RateLimiter struct {
	cfg RateLimiterConfig
	now func() time.Time

	mu   sync.Mutex
	lru  *list.List // of *bucket, most recently used first
	keys map[string]*list.Element
}

type bucket struct {
	key      string
	limiter  *rate.Limiter
	lastSeen time.Time
}

// NewRateLimiter makes a RateLimiter; zero MaxKeys and TTL mean the defaults.
func NewRateLimiter(cfg RateLimiterConfig) *RateLimiter {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultRateLimitMaxKeys
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultRateLimitTTL
	}
	return &RateLimiter{cfg: cfg, now: time.Now, lru: list.New(), keys: map[string]*list.Element{}}
}

// Allow takes a token from key's bucket. When there is none it takes
// nothing and says how long to wait before the next attempt.
func (l *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	lim := l.limiter(key, now)
	res := lim.ReserveN(now, 1)
	if !res.OK() { // Burst 0: nothing ever passes.
		return false, time.Duration(math.MaxInt64)
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len is the number of keys remembered.
func (l *RateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

func (l *RateLimiter) limiter(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Forget keys idle past the TTL; the oldest are at the back.
	for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*bucket).lastSeen) > l.cfg.TTL; e = l.lru.Back() {
		l.remove(e)
	}
	if e, ok := l.keys[key]; ok {
		b := e.Value.(*bucket)
		b.lastSeen = now
		l.lru.MoveToFront(e)
		return b.limiter
	}
	for l.lru.Len() >= l.cfg.MaxKeys {
		l.remove(l.lru.Back())
	}
	b := &bucket{key: key, limiter: rate.NewLimiter(l.cfg.Rate, l.cfg.Burst), lastSeen: now}
	l.keys[key] = l.lru.PushFront(b)
	return b.limiter
}

func (l *RateLimiter) remove(e *list.Element) {
	l.lru.Remove(e)
	delete(l.keys, e.Value.(*bucket).key)
}

// Middleware limits requests by the key keyFunc gives (ClientIP, a client
// ID). A request over the limit gets 429 with Retry-After in seconds and a
// RATE_LIMITED error.
func (l *RateLimiter) Middleware(keyFunc func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok, wait := l.Allow(keyFunc(r))
			if !ok {
				secs := int64(math.Ceil(wait.Seconds()))
				secs = max(secs, 1)
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
				WriteError(w, http.StatusTooManyRequests, CodeRateLimited, "too many requests: retry after "+strconv.FormatInt(secs, 10)+"s")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ClientIP is the address of the client that sent r: the host of
// r.RemoteAddr. Only when that peer is one of trustedProxies is
// X-Forwarded-For believed: it is read from the right, skipping trusted
// proxies, and the first other address is the client. Without
// trustedProxies headers are ignored, since any client can set them.
func ClientIP(r *http.Request, trustedProxies ...netip.Prefix) string {
	peer := remoteIP(r.RemoteAddr)
	if len(trustedProxies) == 0 || !peer.IsValid() || !trusted(peer, trustedProxies) {
		if peer.IsValid() {
			return peer.String()
		}
		return r.RemoteAddr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop at the last address we trust
		}
		ip = ip.Unmap()
		if !trusted(ip, trustedProxies) {
			return ip.String()
		}
		peer = ip
	}
	return peer.String()
}

func remoteIP(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func trusted(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
