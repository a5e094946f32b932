package httpx

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestRateLimiterMiddleware(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(RateLimiterConfig{Rate: rate.Every(time.Minute), Burst: 3})
	h := l.Middleware(func(r *http.Request) string { return ClientIP(r) })(http.HandlerFunc(Health))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	var statuses []int
	var last *http.Response
	for range 5 {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			last = resp
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code != CodeRateLimited {
				t.Errorf("429 body = %+v, %v; want code %s", body, err, CodeRateLimited)
			}
		}
		resp.Body.Close()
	}
	want := []int{200, 200, 200, 429, 429}
	for i := range want {
		if statuses[i] != want[i] {
			t.Fatalf("statuses = %v, want %v", statuses, want)
		}
	}
	secs, err := strconv.Atoi(last.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After = %q, want 1..60 seconds", last.Header.Get("Retry-After"))
	}
}

func TestRateLimiterEviction(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := NewRateLimiter(RateLimiterConfig{Rate: rate.Every(time.Hour), Burst: 1, MaxKeys: 2, TTL: time.Minute,
		Now: func() time.Time { return now }})

	allow := func(key string) bool { ok, _ := l.Allow(key); return ok }
	if !allow("a") || allow("a") {
		t.Fatal("key a: want one request allowed, then refused")
	}
	allow("b")
	allow("c") // evicts a, the least recently used
	if got := l.Len(); got != 2 {
		t.Errorf("Len = %d, want MaxKeys 2", got)
	}
	if !allow("a") {
		t.Error("key a was not evicted past MaxKeys: still limited")
	}

	// Keys idle past the TTL are forgotten.
	now = now.Add(2 * time.Minute)
	allow("d")
	if got := l.Len(); got != 1 {
		t.Errorf("Len after TTL = %d, want 1", got)
	}
}

// TestRateLimiterForgetsRefilledBuckets: a key idle long enough for its
// bucket to refill is forgotten before the TTL, since a new key gets the
// same full bucket; one idle for less keeps its empty bucket.
func TestRateLimiterForgetsRefilledBuckets(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := NewRateLimiter(RateLimiterConfig{Rate: rate.Every(time.Second), Burst: 2, Now: func() time.Time { return now }})
	allow := func(key string) bool { ok, _ := l.Allow(key); return ok }
	for i := range 100 {
		if !allow(fmt.Sprint("10.0.0.", i)) {
			t.Fatal("first request of an address refused")
		}
	}
	allow("a")
	allow("a")
	if allow("a") {
		t.Fatal("a: third request in a burst of 2 allowed")
	}
	now = now.Add(time.Second) // a has one token back, not two
	if got := l.Len(); got != 101 {
		t.Errorf("Len before the refill time = %d, want 101", got)
	}
	if !allow("a") || allow("a") {
		t.Error("a: want one request allowed after a second, then refused")
	}
	now = now.Add(2 * time.Second) // every bucket full again
	allow("b")
	if got := l.Len(); got != 1 {
		t.Errorf("Len after the refill time = %d, want 1 (b)", got)
	}
}

// TestRateLimiterRefuseNewWhenFull: with RefuseNewWhenFull a full table
// turns new keys away until its oldest key is forgotten, and no key's
// bucket is reset; without it the least recently seen key is forgotten.
func TestRateLimiterRefuseNewWhenFull(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := NewRateLimiter(RateLimiterConfig{Rate: rate.Every(time.Hour), Burst: 1, MaxKeys: 2, TTL: time.Minute,
		RefuseNewWhenFull: true, Now: func() time.Time { return now }})
	allow := func(key string) (bool, time.Duration) { return l.Allow(key) }
	if ok, _ := allow("a"); !ok {
		t.Fatal("a refused")
	}
	now = now.Add(10 * time.Second)
	if ok, _ := allow("b"); !ok {
		t.Fatal("b refused")
	}
	ok, wait := allow("c")
	if ok || wait != 50*time.Second {
		t.Errorf("c with a full table: %v, retry after %v; want refused for 50s (until a is forgotten)", ok, wait)
	}
	if got := l.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	now = now.Add(50 * time.Second) // a idle for the TTL: forgotten
	if ok, _ := allow("c"); !ok {
		t.Error("c refused after the retry time it was given")
	}
	if ok, _ := allow("b"); ok {
		t.Error("b's bucket was reset by the newcomer")
	}
}

// TestRateLimiterInf: rate.Inf lets everything through and remembers no
// key.
func TestRateLimiterInf(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(RateLimiterConfig{Rate: rate.Inf, MaxKeys: 1, RefuseNewWhenFull: true})
	for i := range 10 {
		if ok, _ := l.Allow(fmt.Sprint(i)); !ok {
			t.Fatalf("request %d refused under rate.Inf", i)
		}
	}
	if got := l.Len(); got != 0 {
		t.Errorf("Len = %d, want 0", got)
	}
}

func TestSetRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		wait time.Duration
		want string
	}{
		{0, "1"},
		{50 * time.Millisecond, "1"},
		{time.Second, "1"},
		{1400 * time.Millisecond, "2"}, // rounded up: a client retrying at 1s would be refused again
		{time.Minute, "60"},
	} {
		w := httptest.NewRecorder()
		secs := SetRetryAfter(w, tt.wait)
		if got := w.Header().Get("Retry-After"); got != tt.want || strconv.FormatInt(secs, 10) != tt.want {
			t.Errorf("SetRetryAfter(%v): header %q, returned %d; want %s", tt.wait, got, secs, tt.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote, xff string
		trusted           []netip.Prefix
		want              string
	}{
		{"remote addr", "203.0.113.7:5555", "", nil, "203.0.113.7"},
		{"forwarded header ignored without trusted proxies", "203.0.113.7:5555", "198.51.100.1", nil, "203.0.113.7"},
		{"forwarded header from an untrusted peer ignored", "203.0.113.7:5555", "198.51.100.1", proxies, "203.0.113.7"},
		{"trusted proxy", "10.0.0.2:443", "198.51.100.1", proxies, "198.51.100.1"},
		{"spoofed left entry skipped", "10.0.0.2:443", "1.2.3.4, 198.51.100.1, 10.0.0.9", proxies, "198.51.100.1"},
		{"ipv6", "[2001:db8::1]:443", "", nil, "2001:db8::1"},
		{"malformed hop", "10.0.0.2:443", "garbage", proxies, "10.0.0.2"},
		{"ipv4-mapped ipv6", "[::ffff:203.0.113.7]:5555", "", nil, "203.0.113.7"},
		{"not an IP: the port dropped", "peer.example:5555", "", nil, "peer.example"},
		{"unix socket peer", "@", "198.51.100.1", proxies, "@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := ClientIP(r, tt.trusted...); got != tt.want {
				t.Errorf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := ParseTrustedProxies([]string{"10.0.0.0/8", " 192.0.2.7 ", "::ffff:198.51.100.1", "2001:db8::/32", "10.1.2.3/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.1/32", "2001:db8::/32", "10.0.0.0/8"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, p, want[i])
		}
	}
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", "", "0.0.0.0/0", "::/0"} {
		if _, err := ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ParseTrustedProxies(%q) = %v, want an error naming it", bad, err)
		}
	}
}
