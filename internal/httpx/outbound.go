package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// OutboundPolicy decides where the server's outbound connections may go:
// git remotes, image registries, forges, webhook receivers. Every client
// the server builds dials through it.
//
// Addresses are checked when a connection is made, on the address
// actually dialed: a host name is resolved once, its addresses are
// checked, and only an allowed one is dialed (a second check on the
// socket address, in the dialer's Control, guards that path), so a DNS
// server that answers differently between a check and the connection
// (rebinding) gains nothing.
//
// By default only public unicast addresses are allowed. Loopback and
// private ranges need AllowLoopback and AllowPrivate; unspecified,
// "this network" (0.0.0.0/8), link-local (169.254.0.0/16, fe80::/10,
// where cloud metadata services answer), multicast and broadcast
// addresses are refused unless a prefix of Allow covers them.
//
// The zero value is the default policy. Proxies from the environment are
// not used: the policy could not see where a proxy connects.
type OutboundPolicy struct {
	// Schemes are the URL schemes allowed (CheckURL, redirects) and, for
	// git, the protocols: https, http, ssh, git, file. "file" (local
	// paths and file:// repositories) only ever applies to git. Empty
	// means DefaultOutboundSchemes.
	Schemes []string
	// AllowLoopback allows 127.0.0.0/8 and ::1 (and "localhost").
	AllowLoopback bool
	// AllowPrivate allows private ranges: 10.0.0.0/8, 172.16.0.0/12,
	// 192.168.0.0/16, 100.64.0.0/10 (carrier-grade NAT) and fc00::/7.
	AllowPrivate bool
	// Allow lists prefixes allowed whatever else says, link-local and
	// loopback included (an internal registry, a metadata proxy).
	Allow []netip.Prefix
	// Resolver resolves host names; nil means net.DefaultResolver. Tests
	// set one that lies.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
	// DialTimeout bounds one connection attempt; 0 means 30s.
	DialTimeout time.Duration
}

// DefaultOutboundSchemes are the schemes an OutboundPolicy allows when its
// Schemes is empty: TLS and SSH only; plain http, git:// and local
// repositories (file) must be allowed by name.
var DefaultOutboundSchemes = []string{"https", "ssh"}

// ErrOutboundRefused is wrapped by every refusal of an OutboundPolicy.
var ErrOutboundRefused = errors.New("refused by the outbound policy")

// OutboundError says which destination the policy refused and why. It
// names the host and address, never a URL's path, query or credentials.
type OutboundError struct {
	Host   string     // the host as given
	Addr   netip.Addr // the address refused; zero when the host was
	Reason string     // "a loopback address", "scheme \"ftp\"", ...
}

func (e *OutboundError) Error() string {
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		return fmt.Sprintf("outbound connection to %s (%s) refused: %s", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("outbound connection to %s refused: %s", e.Host, e.Reason)
}

// Is makes errors.Is(err, ErrOutboundRefused) true.
func (e *OutboundError) Is(target error) bool { return target == ErrOutboundRefused }

func (p *OutboundPolicy) schemes() []string {
	if p == nil || len(p.Schemes) == 0 {
		return DefaultOutboundSchemes
	}
	return p.Schemes
}

// AllowsScheme reports whether the policy allows scheme (lower case).
func (p *OutboundPolicy) AllowsScheme(scheme string) bool {
	return slices.Contains(p.schemes(), strings.ToLower(scheme))
}

// Special ranges.
var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	ipv4Compat  = netip.MustParsePrefix("::/96")        // deprecated IPv4-compatible
	nat64       = netip.MustParsePrefix("64:ff9b::/96") // embeds an IPv4 address
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// CheckAddr says whether the policy allows a connection to addr: nil, or
// an *OutboundError naming why not.
func (p *OutboundPolicy) CheckAddr(addr netip.Addr) error {
	return p.checkAddr(addr.String(), addr)
}

func (p *OutboundPolicy) checkAddr(host string, addr netip.Addr) error {
	if p == nil {
		p = &OutboundPolicy{}
	}
	addr = addr.WithZone("")
	for _, pre := range p.Allow {
		if pre.Contains(addr) || pre.Contains(addr.Unmap()) {
			return nil
		}
	}
	refuse := func(reason string) error { return &OutboundError{Host: host, Addr: addr, Reason: reason} }
	a := addr.Unmap()
	if a.Is6() && (ipv4Compat.Contains(a) && !a.IsLoopback() && !a.IsUnspecified() || nat64.Contains(a)) {
		// An IPv4 address in IPv6 clothing: judge the IPv4 address.
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !a.IsValid():
		return refuse("not an IP address")
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return refuse("an unspecified address")
	case a.IsLinkLocalUnicast():
		return refuse("a link-local address (cloud metadata lives there); allow its prefix explicitly if needed")
	case a.IsMulticast() || a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() || a == broadcast:
		return refuse("a multicast or broadcast address")
	case a.IsLoopback():
		if !p.AllowLoopback {
			return refuse("a loopback address; the server allows those only with --outbound-allow-loopback")
		}
	case a.IsPrivate() || cgnat.Contains(a):
		if !p.AllowPrivate {
			return refuse("a private address; the server allows those only with --outbound-allow-private")
		}
	}
	return nil
}

// numericHost matches host names that C resolvers read as IPv4 addresses
// although they are not in dotted-decimal form: 2130706433, 0177.0.0.1,
// 0x7f.1, 127.1. They are refused outright rather than guessed at.
var numericHost = regexp.MustCompile(`(?i)^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$`)

// checkHost refuses hosts that cannot be judged by name: numeric forms
// other than a plain IP address, and empty names.
func checkHost(host string) (netip.Addr, bool, error) {
	if host == "" {
		return netip.Addr{}, false, &OutboundError{Host: host, Reason: "no host"}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true, nil
	}
	if numericHost.MatchString(host) {
		return netip.Addr{}, false, &OutboundError{Host: host, Reason: "a numeric host that is not a dotted-decimal IPv4 address"}
	}
	if strings.ContainsAny(host, "%/\\ ") {
		return netip.Addr{}, false, &OutboundError{Host: host, Reason: "not a host name"}
	}
	return netip.Addr{}, false, nil
}

// CheckURL checks a URL before it is stored or used, without resolving
// its host: the scheme is allowed, a host is given, and an IP address
// host (or "localhost") is allowed. Names are checked again, resolved,
// each time a connection is made.
func (p *OutboundPolicy) CheckURL(u *url.URL) error {
	if u == nil || u.Host == "" {
		return &OutboundError{Reason: "no host"}
	}
	host := u.Hostname()
	if !p.AllowsScheme(u.Scheme) || strings.EqualFold(u.Scheme, "file") {
		return &OutboundError{Host: host, Reason: fmt.Sprintf("scheme %q is not allowed (allowed: %s)", u.Scheme, strings.Join(p.schemes(), ", "))}
	}
	return p.CheckHost(host)
}

// CheckHost checks a host without resolving it (see CheckURL).
func (p *OutboundPolicy) CheckHost(host string) error {
	a, literal, err := checkHost(host)
	switch {
	case err != nil:
		return err
	case literal:
		return p.checkAddr(host, a)
	case strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost"):
		return p.checkAddr(host, netip.IPv6Loopback())
	}
	return nil
}

// IsLoopbackHost reports whether host, as url.URL.Hostname gives it (no
// brackets, no port), surely names this machine without asking a
// resolver beyond the hosts file: "localhost" in any case, a loopback
// address of either family (127.0.0.0/8, ::1), an IPv4 loopback address
// mapped into IPv6 (::ffff:127.0.0.1), with or without a zone. It is
// false for everything else, including other names under localhost,
// "localhost." and numeric forms that are not plain addresses (127.1),
// so callers may send in the clear only what it accepts.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.WithZone("").Unmap().IsLoopback()
}

// Resolve resolves host and returns its addresses that the policy allows,
// in the resolver's order; an error when there is none.
func (p *OutboundPolicy) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	a, literal, err := checkHost(host)
	if err != nil {
		return nil, err
	}
	if literal {
		if err := p.checkAddr(host, a); err != nil {
			return nil, err
		}
		return []netip.Addr{a}, nil
	}
	var r interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	} = net.DefaultResolver
	if p != nil && p.Resolver != nil {
		r = p.Resolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}
	var ok []netip.Addr
	var firstErr error
	for _, a := range addrs {
		if err := p.checkAddr(host, a); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ok = append(ok, a.WithZone(""))
	}
	if len(ok) == 0 {
		if firstErr == nil {
			firstErr = &OutboundError{Host: host, Reason: "it resolves to no address"}
		}
		return nil, firstErr
	}
	return ok, nil
}

// ResolveOne is Resolve's first address: the one to pin a connection to.
func (p *OutboundPolicy) ResolveOne(ctx context.Context, host string) (netip.Addr, error) {
	addrs, err := p.Resolve(ctx, host)
	if err != nil {
		return netip.Addr{}, err
	}
	return addrs[0], nil
}

// dialer is the net.Dialer whose Control refuses, on the socket address
// about to be connected, any address the policy does not allow.
func (p *OutboundPolicy) dialer() *net.Dialer {
	timeout := 30 * time.Second
	if p != nil && p.DialTimeout > 0 {
		timeout = p.DialTimeout
	}
	return &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &OutboundError{Host: address, Reason: "not an IP address"}
			}
			return p.checkAddr(ap.Addr().String(), ap.Addr())
		},
	}
}

// DialContext connects to addr (host:port) on network ("tcp", "tcp4",
// "tcp6") under the policy: the host is resolved once, and only the
// addresses the policy allows are dialed, in turn.
func (p *OutboundPolicy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := p.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	d := p.dialer()
	var firstErr error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// Transport returns an HTTP transport that dials only through the
// policy, without a proxy, with http.DefaultTransport's other settings.
func (p *OutboundPolicy) Transport() *http.Transport {
	return &http.Transport{
		DialContext:           p.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

// Client returns an HTTP client on Transport with a request timeout
// (0: none). Every request, redirects included (at most 10), must be to
// a URL CheckURL allows; the dialer checks where it goes in any case.
// (Transport alone checks addresses, not schemes: ggcr picks http for
// the registries it is told are insecure.)
func (p *OutboundPolicy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &checkedTransport{p: p, rt: p.Transport()},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return p.CheckURL(req.URL)
		},
	}
}

// checkedTransport refuses requests to URLs the policy does not allow
// before they reach the dialer.
type checkedTransport struct {
	p  *OutboundPolicy
	rt http.RoundTripper
}

func (t *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.p.CheckURL(req.URL); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return t.rt.RoundTrip(req)
}
