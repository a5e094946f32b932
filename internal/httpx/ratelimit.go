package httpx

import (
	"container/list"
	"fmt"
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
	// make, and Burst how many it may make at once. rate.Inf lets every
	// request through and remembers no key.
	Rate  rate.Limit
	Burst int
	// MaxKeys bounds memory: past it the least recently seen key is
	// forgotten, which gives it a full bucket again
	// (DefaultRateLimitMaxKeys if zero).
	MaxKeys int
	// TTL forgets keys not seen for that long (DefaultRateLimitTTL if
	// zero). A key is forgotten sooner once its bucket has refilled
	// (Burst/Rate after its last request): a full bucket is what a new
	// key gets, so forgetting it loses nothing.
	TTL time.Duration
	// RefuseNewWhenFull refuses a new key while MaxKeys keys are
	// remembered, instead of forgetting the least recently seen one
	// (which resets that key's bucket); the refusal's retryAfter is when
	// the oldest key will be forgotten. Set it where a limit that loosens
	// under a flood of new keys is worse than newcomers waiting: the
	// limit then fails closed.
	RefuseNewWhenFull bool
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// RateLimiter is a token bucket per key (a client IP, a client ID), with
// the keys kept in an LRU list bounded in size and age. It is safe for
// concurrent use.
type RateLimiter struct {
	cfg RateLimiterConfig
	// idle is how long a key is kept after its last request: TTL, or
	// the time its bucket takes to refill if that is shorter.
	idle time.Duration

	mu   sync.Mutex
	lru  *list.List // of *bucket, most recently used first
	keys map[string]*list.Element
}

type bucket struct {
	key      string
	limiter  *rate.Limiter
	lastSeen time.Time
}

// NewRateLimiter makes a RateLimiter; zero MaxKeys and TTL mean the
// defaults.
func NewRateLimiter(cfg RateLimiterConfig) *RateLimiter {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultRateLimitMaxKeys
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultRateLimitTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RateLimiter{cfg: cfg, idle: keepFor(cfg), lru: list.New(), keys: map[string]*list.Element{}}
}

// keepFor is how long a key is remembered after its last request: the
// TTL, or less when an empty bucket refills sooner.
func keepFor(cfg RateLimiterConfig) time.Duration {
	if cfg.Rate <= 0 { // never refills
		return cfg.TTL
	}
	refill := math.Ceil(float64(cfg.Burst) / float64(cfg.Rate) * float64(time.Second))
	if refill >= float64(cfg.TTL) {
		return cfg.TTL
	}
	return time.Duration(refill)
}

// Allow takes a token from key's bucket. When there is none, or key is
// new and RefuseNewWhenFull turns it away, it takes nothing and says how
// long to wait before the next attempt.
func (l *RateLimiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.cfg.Rate == rate.Inf {
		return true, 0
	}
	now := l.cfg.Now()
	lim, wait := l.limiter(key, now)
	if lim == nil {
		return false, wait
	}
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

// limiter is key's bucket, made if key is new. It is nil when the table
// is full and RefuseNewWhenFull refuses key, with the time until a slot
// frees.
func (l *RateLimiter) limiter(key string, now time.Time) (*rate.Limiter, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Forget keys idle for l.idle; the oldest are at the back.
	for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*bucket).lastSeen) >= l.idle; e = l.lru.Back() {
		l.remove(e)
	}
	if e, ok := l.keys[key]; ok {
		b := e.Value.(*bucket)
		b.lastSeen = now
		l.lru.MoveToFront(e)
		return b.limiter, 0
	}
	if l.lru.Len() >= l.cfg.MaxKeys && l.cfg.RefuseNewWhenFull {
		oldest := l.lru.Back().Value.(*bucket) // forgotten at lastSeen+idle, after now
		return nil, oldest.lastSeen.Add(l.idle).Sub(now)
	}
	for l.lru.Len() >= l.cfg.MaxKeys {
		l.remove(l.lru.Back())
	}
	b := &bucket{key: key, limiter: rate.NewLimiter(l.cfg.Rate, l.cfg.Burst), lastSeen: now}
	l.keys[key] = l.lru.PushFront(b)
	return b.limiter, 0
}

func (l *RateLimiter) remove(e *list.Element) {
	l.lru.Remove(e)
	delete(l.keys, e.Value.(*bucket).key)
}

// Middleware limits requests by the key keyFunc gives (ClientIP, a client
// ID). A request over the limit gets WriteRateLimited's answer.
func (l *RateLimiter) Middleware(keyFunc func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, wait := l.Allow(keyFunc(r)); !ok {
				WriteRateLimited(w, wait, "too many requests")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WriteRateLimited answers 429 RATE_LIMITED with a Retry-After of wait
// (SetRetryAfter). The message is what says what was refused ("too many
// activation attempts") followed by ": retry after Ns".
func WriteRateLimited(w http.ResponseWriter, wait time.Duration, what string) {
	secs := SetRetryAfter(w, wait)
	WriteError(w, http.StatusTooManyRequests, CodeRateLimited, what+": retry after "+strconv.FormatInt(secs, 10)+"s")
}

// SetRetryAfter sets the Retry-After header to wait in whole seconds,
// rounded up so that a client waiting that long is not refused again, and
// at least 1; it returns the seconds. For answers whose body is not
// WriteRateLimited's (an OAuth error).
func SetRetryAfter(w http.ResponseWriter, wait time.Duration) int64 {
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return secs
}

// ClientIP is the address of the client that sent r: the host of
// r.RemoteAddr (an IPv4-mapped IPv6 address as IPv4, so that one client
// has one key). Only when that peer is one of trustedProxies is
// X-Forwarded-For believed: it is read from the right, skipping trusted
// proxies, and the first other address is the client. Without
// trustedProxies headers are ignored, since any client can set them.
func ClientIP(r *http.Request, trustedProxies ...netip.Prefix) string {
	host, peer := remoteHost(r.RemoteAddr)
	if !peer.IsValid() {
		return host
	}
	if len(trustedProxies) == 0 || !trusted(peer, trustedProxies) {
		return peer.String()
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

// remoteHost splits a remote address into its host, without the port, and
// the host as an IP address (invalid when it is not one, such as the
// address of a Unix socket's peer).
func remoteHost(addr string) (string, netip.Addr) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host, netip.Addr{}
	}
	return host, ip.Unmap()
}

func trusted(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses the reverse proxies whose X-Forwarded-For
// ClientIP believes: each an address prefix ("10.0.0.0/8") or one address
// ("192.0.2.7", taken as /32 or /128). The error names the first value
// that is neither, and refuses a prefix that covers every address, which
// would let any client name itself.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: want an address or a prefix such as 10.0.0.0/8", v)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("trusted proxy %q covers every address: any client could then name itself", v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
