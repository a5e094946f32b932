package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
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
	l := NewRateLimiter(RateLimiterConfig{Rate: rate.Every(time.Hour), Burst: 1, MaxKeys: 2, TTL: time.Minute})
	l.now = func() time.Time { return now }

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
