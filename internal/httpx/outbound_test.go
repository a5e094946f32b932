package httpx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestOutboundCheckAddr(t *testing.T) {
	t.Parallel()
	strict := &OutboundPolicy{}
	open := &OutboundPolicy{AllowLoopback: true, AllowPrivate: true}
	meta := &OutboundPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}
	tests := []struct {
		addr               string
		strict, open, meta bool // allowed?
	}{
		{"8.8.8.8", true, true, true},
		{"2001:4860:4860::8888", true, true, true},
		{"127.0.0.1", false, true, false},
		{"127.9.9.9", false, true, false},
		{"::1", false, true, false},
		{"::ffff:127.0.0.1", false, true, false},
		{"::127.0.0.1", false, true, false},     // IPv4-compatible
		{"64:ff9b::7f00:1", false, true, false}, // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", false, true, false},  // NAT64 of 10.0.0.1
		{"::ffff:8.8.8.8", true, true, true},    // mapped public
		{"10.1.2.3", false, true, false},
		{"172.16.0.1", false, true, false},
		{"192.168.1.1", false, true, false},
		{"100.64.0.1", false, true, false},
		{"fc00::1", false, true, false},
		{"::ffff:192.168.0.1", false, true, false},
		{"169.254.169.254", false, false, true},
		{"169.254.1.1", false, false, false},
		{"::ffff:169.254.169.254", false, false, true},
		{"fe80::1", false, false, false},
		{"fe80::1%eth0", false, false, false},
		{"0.0.0.0", false, false, false},
		{"0.1.2.3", false, false, false},
		{"::", false, false, false},
		{"224.0.0.1", false, false, false},
		{"ff02::1", false, false, false},
		{"255.255.255.255", false, false, false},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		for _, c := range []struct {
			name string
			p    *OutboundPolicy
			want bool
		}{{"strict", strict, tt.strict}, {"open", open, tt.open}, {"metadata allowed", meta, tt.meta}} {
			err := c.p.CheckAddr(a)
			if got := err == nil; got != c.want {
				t.Errorf("%s: CheckAddr(%s) = %v, want allowed %v", c.name, tt.addr, err, c.want)
			}
			if err != nil && !errors.Is(err, ErrOutboundRefused) {
				t.Errorf("%s: CheckAddr(%s) = %v, not ErrOutboundRefused", c.name, tt.addr, err)
			}
		}
	}
	if err := (*OutboundPolicy)(nil).CheckAddr(netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Error("a nil policy allows loopback")
	}
}

func TestOutboundCheckURL(t *testing.T) {
	t.Parallel()
	p := &OutboundPolicy{}
	for _, bad := range []string{
		"http://127.0.0.1/", "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/",
		"http://localhost/", "http://LOCALHOST./", "http://api.localhost/",
		"http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/", "http://127.1/", "http://0x7f000001/", "http://017700000001/",
		"http://169.254.169.254/latest/meta-data/", "http://[fe80::1%25eth0]/", "http://0.0.0.0:8080/",
		"ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "https:///nohost",
	} {
		u, err := url.Parse(bad)
		if err != nil {
			t.Fatal(err)
		}
		err = p.CheckURL(u)
		if err == nil || !errors.Is(err, ErrOutboundRefused) {
			t.Errorf("CheckURL(%s) = %v, want a refusal", bad, err)
		}
	}
	if err := p.CheckURL(&url.URL{Scheme: "http", Host: "example.com"}); err == nil {
		t.Error("plain http allowed by default")
	}
	for _, good := range []string{"https://example.com/x", "https://example.com:8443/", "https://8.8.8.8/", "https://1e100.net/"} {
		u, _ := url.Parse(good)
		if err := p.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%s) = %v", good, err)
		}
	}
	u, _ := url.Parse("https://example.com/")
	if err := (&OutboundPolicy{Schemes: []string{"http"}}).CheckURL(u); err == nil {
		t.Error("https allowed by a policy of http only")
	}
}

// lyingResolver answers first with a public address, then with loopback:
// a rebinding DNS server.
type lyingResolver struct {
	mu    sync.Mutex
	calls int
	first netip.Addr
	then  netip.Addr
}

func (r *lyingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls == 1 {
		return []netip.Addr{r.first}, nil
	}
	return []netip.Addr{r.then}, nil
}

// counting is an HTTP server on loopback that counts its requests.
func counting(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(ts.Close)
	return ts, &n
}

func TestOutboundClientRefusesLoopbackByDefault(t *testing.T) {
	t.Parallel()
	ts, hits := counting(t)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	for _, u := range []string{ts.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port, "http://2130706433:" + port} {
		resp, err := (&OutboundPolicy{Schemes: []string{"http"}}).Client(0).Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: allowed", u)
		} else if !errors.Is(err, ErrOutboundRefused) {
			t.Errorf("GET %s: %v, want ErrOutboundRefused", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback server got %d requests", hits.Load())
	}
	if resp, err := (&OutboundPolicy{AllowLoopback: true}).Client(0).Get(ts.URL); err == nil || !errors.Is(err, ErrOutboundRefused) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("GET %s without http among the schemes: %v, want a refusal", ts.URL, err)
	}
	resp, err := (&OutboundPolicy{AllowLoopback: true, Schemes: []string{"http"}}).Client(0).Get(ts.URL)
	if err != nil {
		t.Fatalf("GET with AllowLoopback: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("hits = %d, want 1", hits.Load())
	}
}

// TestOutboundDNSRebinding: the name is checked (public) and then, at the
// connection, resolves to loopback: the dialer judges what it dials.
func TestOutboundDNSRebinding(t *testing.T) {
	t.Parallel()
	ts, hits := counting(t)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	r := &lyingResolver{first: netip.MustParseAddr("203.0.113.7"), then: netip.MustParseAddr("127.0.0.1")}
	p := &OutboundPolicy{Resolver: r, Schemes: []string{"http"}}
	if a, err := p.ResolveOne(context.Background(), "rebind.example"); err != nil || a != r.first {
		t.Fatalf("first resolution = %v, %v; want the public address", a, err)
	}
	resp, err := p.Client(0).Get("http://rebind.example:" + port + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET after rebinding to loopback succeeded")
	}
	if !errors.Is(err, ErrOutboundRefused) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error %v: want a refusal naming 127.0.0.1", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback server got %d requests", hits.Load())
	}
}

// TestOutboundDialerControl: the dialer's own check is on the socket
// address, whatever resolved it.
func TestOutboundDialerControl(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	_, err = (&OutboundPolicy{}).dialer().DialContext(context.Background(), "tcp", ln.Addr().String())
	if !errors.Is(err, ErrOutboundRefused) {
		t.Fatalf("dial %s: %v, want ErrOutboundRefused", ln.Addr(), err)
	}
	c, err := (&OutboundPolicy{AllowLoopback: true}).dialer().DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestOutboundRedirectToLoopback: an allowed server redirects to another
// loopback address; the redirect is not followed.
func TestOutboundRedirectToLoopback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	var hits atomic.Int32
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	target.Listener.Close()
	target.Listener = ln
	target.Start()
	defer target.Close()
	for _, to := range []string{target.URL + "/", strings.Replace(target.URL, "127.0.0.2", "localhost", 1) + "/"} {
		var fromHits atomic.Int32
		redirect := http.RedirectHandler(to, http.StatusFound)
		from := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fromHits.Add(1)
			redirect.ServeHTTP(w, r)
		}))
		p := &OutboundPolicy{Schemes: []string{"http"}, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		resp, err := p.Client(0).Get(from.URL)
		from.Close()
		if err == nil {
			resp.Body.Close()
			t.Errorf("redirect to %s followed", to)
		} else if !errors.Is(err, ErrOutboundRefused) {
			t.Errorf("redirect to %s: %v, want ErrOutboundRefused", to, err)
		}
		if fromHits.Load() != 1 {
			t.Errorf("the allowed server got %d requests, want 1", fromHits.Load())
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the redirect target got %d requests", hits.Load())
	}
}

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost":               true,
		"LocalHost":               true,
		"127.0.0.1":               true,
		"127.255.255.254":         true,
		"::1":                     true,
		"0:0:0:0:0:0:0:1":         true,
		"::ffff:127.0.0.1":        true,
		"::ffff:7f00:1":           true,
		"::1%lo0":                 true,
		"":                        false,
		"localhost.":              false,
		"foo.localhost":           false,
		"localhost.example.com":   false,
		"127.0.0.1.nip.io":        false,
		"[::1]":                   false, // Hostname strips brackets
		"127.0.0.1:80":            false,
		"127.1":                   false,
		"2130706433":              false,
		"0x7f.0.0.1":              false,
		"0177.0.0.1":              false,
		"0.0.0.0":                 false,
		"::":                      false,
		"::127.0.0.1":             false, // IPv4-compatible: not routed to loopback
		"64:ff9b::7f00:1":         false, // NAT64 goes through a gateway
		"fe80::1%lo0":             false,
		"10.0.0.1":                false,
		"::ffff:10.0.0.1":         false,
		"example.com":             false,
		"localhost\x00.evil.test": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
