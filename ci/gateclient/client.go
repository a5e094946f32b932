package gateclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/ci"
)

// Scope is the OAuth2 scope the gate API requires.
const Scope = "gate:read"

// ScanScope is the OAuth2 scope that Config.RequestScan needs as well:
// reading the gate never starts a scan.
const ScanScope = "scans:write"

// DefaultTimeout bounds one HTTP request when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxBodyBytes bounds what is read of a server's answer.
const maxBodyBytes = 4 << 20

// Config says which server to ask and how.
type Config struct {
	// Server is the base URL of the Vigil server, such as
	// https://vigil.example.com:8443. Required.
	Server string
	// ClientID and ClientSecret are the OAuth2 client credentials of a
	// client with scope gate:read. Required.
	ClientID, ClientSecret string
	// CACert is a PEM file of the certificates to trust for the server,
	// instead of the system roots: the self-signed certificate of
	// `vigil serve`, or a private CA.
	CACert string
	// Fingerprint pins the server's certificate by the SHA-256 of its DER
	// encoding, as `vigil serve` prints it (colon-separated hex; case and
	// colons are ignored). Any other certificate is refused, and no other
	// check is made. Not with CACert.
	Fingerprint string
	// Timeout bounds each HTTP request; zero means DefaultTimeout.
	Timeout time.Duration
	// PollInterval is the first wait between two questions in Wait, and
	// PollMax the longest; zero means 1s and 15s. Each wait is 1.5 times
	// the last, with ±20% jitter.
	PollInterval, PollMax time.Duration
	// RequestScan makes Wait ask the server to scan the commit or image
	// (POST /api/v1/scans) before it waits for the decision, for a
	// pipeline whose pushes do not reach the server by webhook. The
	// client then needs scope ScanScope too. Without it, a commit the
	// server has not heard of stays unknown until its push arrives.
	RequestScan bool
}

// Validate reports what is missing or wrong in c.
func (c *Config) Validate() error {
	if c.Server == "" {
		return errors.New("the server URL is required")
	}
	u, err := url.Parse(c.Server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("server %q is not an http(s) URL such as https://vigil.example.com:8443", c.Server)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return errors.New("client ID and client secret are required")
	}
	if c.CACert != "" && c.Fingerprint != "" {
		return errors.New("give a CA certificate or a fingerprint, not both")
	}
	if c.Fingerprint != "" {
		if _, err := parseFingerprint(c.Fingerprint); err != nil {
			return err
		}
	}
	if c.Timeout < 0 || c.PollInterval < 0 || c.PollMax < 0 {
		return errors.New("timeouts and poll intervals cannot be negative")
	}
	return nil
}

// Client asks one server for gate decisions. It is safe for concurrent use
// and caches its access token until it expires.
type Client struct {
	server    string // without a trailing slash
	http      *http.Client
	tokens    oauth2.TokenSource
	pollFirst time.Duration
	pollMax   time.Duration
	scan      bool // Config.RequestScan
}

// New returns a Client for cfg. It reads CACert but does not contact the
// server.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	server, hc, tokens, err := connect(cfg, scopes(cfg.RequestScan))
	if err != nil {
		return nil, err
	}
	c := &Client{
		server:    server,
		http:      hc,
		tokens:    tokens,
		pollFirst: cfg.PollInterval,
		pollMax:   cfg.PollMax,
		scan:      cfg.RequestScan,
	}
	if c.pollFirst == 0 {
		c.pollFirst = time.Second
	}
	if c.pollMax == 0 {
		c.pollMax = 15 * time.Second
	}
	return c, nil
}

// connect makes what every client of a Vigil server needs: the server's
// base URL without a trailing slash, an HTTP client that trusts its
// certificate as cfg says (with cfg.Timeout per request), and a cached
// source of access tokens for cfg's client credentials, asking for
// scopes (none: every scope of the client).
func connect(cfg Config, scopes []string) (string, *http.Client, oauth2.TokenSource, error) {
	tlsConf, err := TLSConfig(cfg.CACert, cfg.Fingerprint)
	if err != nil {
		return "", nil, nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConf
	hc := &http.Client{Transport: transport, Timeout: timeout}

	server := strings.TrimRight(cfg.Server, "/")
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     server + "/oauth2/token",
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	// The token source keeps this context for every token request: it
	// carries the HTTP client (and so the TLS configuration), and nothing
	// that is cancelled.
	tctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	return server, hc, oauth2.ReuseTokenSource(nil, cc.TokenSource(tctx)), nil
}

// AuthorizedClient returns the server's base URL (without a trailing
// slash) and an HTTP client that sends an access token of cfg's client,
// with every scope the client has, on each request: for the Management
// API calls other than the gate's (the project commands). Only cfg's
// server, credentials, CACert, Fingerprint and Timeout count.
func AuthorizedClient(cfg Config) (string, *http.Client, error) {
	if err := cfg.Validate(); err != nil {
		return "", nil, err
	}
	server, hc, tokens, err := connect(cfg, nil)
	if err != nil {
		return "", nil, err
	}
	src := patientSource{src: tokens, limit: hc.Timeout, sleep: time.Sleep}
	return server, &http.Client{Transport: &oauth2.Transport{Source: src, Base: hc.Transport}, Timeout: hc.Timeout}, nil
}

// patientSource asks for a token again when the token endpoint answers
// 429 (slow_down), after the Retry-After it gives, for at most limit in
// all: a script of commands, each getting its own token, meets the
// endpoint's rate limit per client address, and should slow down, not
// fail.
type patientSource struct {
	src   oauth2.TokenSource
	limit time.Duration
	sleep func(time.Duration)
}

func (p patientSource) Token() (*oauth2.Token, error) {
	deadline := time.Now().Add(p.limit)
	for {
		t, err := p.src.Token()
		var re *oauth2.RetrieveError
		if err == nil || !errors.As(err, &re) || re.Response == nil || re.Response.StatusCode != http.StatusTooManyRequests {
			return t, err
		}
		wait := retryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		if wait <= 0 {
			wait = time.Second
		}
		if time.Now().Add(wait).After(deadline) {
			return t, err
		}
		p.sleep(wait)
	}
}

// TLSConfig is the TLS configuration of a client of a Vigil server: the
// system roots; or, with caCert, the certificates of that PEM file; or,
// with fingerprint, only the certificate whose SHA-256 it is (see
// Config). Other Vigil clients (the project commands) share it.
func TLSConfig(caCert, fingerprint string) (*tls.Config, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case caCert != "" && fingerprint != "":
		return nil, errors.New("give a CA certificate or a fingerprint, not both")
	case caCert != "":
		pem, err := os.ReadFile(caCert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", caCert)
		}
		tlsConf.RootCAs = pool
	case fingerprint != "":
		want, err := parseFingerprint(fingerprint)
		if err != nil {
			return nil, err
		}
		// The pin replaces chain and name verification: the certificate
		// is trusted because it is exactly the one the operator printed.
		tlsConf.InsecureSkipVerify = true // #nosec G402 -- VerifyConnection below checks the pinned SHA-256 fingerprint
		tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &FingerprintError{Want: formatFingerprint(want[:])}
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got != want {
				return &FingerprintError{Got: formatFingerprint(got[:]), Want: formatFingerprint(want[:])}
			}
			return nil
		}
	}
	return tlsConf, nil
}

// Query names what to ask about: a project and commit, or an image
// reference (a tag or a digest).
type Query struct {
	Project, Commit string
	Image           string
}

func (q Query) validate() error {
	switch {
	case q.Image != "" && (q.Project != "" || q.Commit != ""):
		return errors.New("ask about a project and commit or about an image, not both")
	case q.Image == "" && (q.Project == "" || q.Commit == ""):
		return errors.New("ask about a project and commit, or about an image")
	}
	return nil
}

// String names the query in messages: "project app at 1a2b3c" or
// "image registry.example.com/app:1.2".
func (q Query) String() string {
	if q.Image != "" {
		return "image " + q.Image
	}
	return fmt.Sprintf("project %s at %s", q.Project, q.Commit)
}

// Answer is the server's gate decision.
type Answer struct {
	Decision string      `json:"decision"` // ci.Pass, ci.Fail, ci.Pending or ci.Unknown
	Reasons  []ci.Reason `json:"reasons"`
	Scan     string      `json:"scan,omitempty"` // the scan's API URL, when there is one
	// Raw is the server's JSON exactly as received, for `--json`.
	Raw json.RawMessage `json:"-"`
}

// Passed reports whether the gate passed.
func (a *Answer) Passed() bool { return a != nil && a.Decision == ci.Pass }

// Error is an error answer of the server, or of its token endpoint.
type Error struct {
	Server     string
	StatusCode int
	Code       string // the API's machine-readable code, when given
	Message    string // the API's message, or what to do
	// RetryAfter is the wait the server asked for with 429 or 503.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("vigil server %s answered %d", e.Server, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Temporary reports whether asking again later may succeed.
func (e *Error) Temporary() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// FingerprintError is the refusal of a certificate that does not match
// Config.Fingerprint.
type FingerprintError struct{ Got, Want string }

func (e *FingerprintError) Error() string {
	return fmt.Sprintf("server certificate fingerprint %s does not match the pinned %s; compare --fingerprint with what `vigil serve` printed", e.Got, e.Want)
}

// Gate asks once for the decision on q.
func (c *Client) Gate(ctx context.Context, q Query) (*Answer, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	v := url.Values{}
	if q.Image != "" {
		v.Set("image", q.Image)
	} else {
		v.Set("project", q.Project)
		v.Set("commit", q.Commit)
	}
	tok, err := c.tokens.Token()
	if err != nil {
		return nil, c.tokenError(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/api/v1/gate?"+v.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("gate request to vigil server %s: %w", c.server, err)
	}
	req.Header.Set("Accept", "application/json")
	tok.SetAuthHeader(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, TransportError(c.server, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the gate answer of vigil server %s: %w", c.server, err)
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("the gate answer of vigil server %s is larger than %d bytes", c.server, maxBodyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.apiError(resp, body, Scope)
	}
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("vigil server %s answered a gate decision that is not JSON: %w", c.server, err)
	}
	switch a.Decision {
	case ci.Pass, ci.Fail, ci.Pending, ci.Unknown:
	default:
		return nil, fmt.Errorf("vigil server %s answered an unknown gate decision %q", c.server, a.Decision)
	}
	if strings.HasPrefix(a.Scan, "/") && !strings.HasPrefix(a.Scan, "//") {
		// A server without a public URL links relative to itself.
		a.Scan = c.server + a.Scan
	}
	a.Raw = json.RawMessage(body)
	return &a, nil
}

// scopes are the scopes the client asks its token for.
func scopes(requestScan bool) []string {
	if requestScan {
		return []string{Scope, ScanScope}
	}
	return []string{Scope}
}

// RequestScan asks the server to scan what q names (POST
// /api/v1/scans); a scan that exists already is not repeated. The client
// needs scope ScanScope.
func (c *Client) RequestScan(ctx context.Context, q Query) error {
	if err := q.validate(); err != nil {
		return err
	}
	body := map[string]string{"image": q.Image}
	if q.Image == "" {
		body = map[string]string{"project": q.Project, "commit": q.Commit}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	tok, err := c.tokens.Token()
	if err != nil {
		return c.tokenError(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+"/api/v1/scans", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("scan request to vigil server %s: %w", c.server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	tok.SetAuthHeader(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return TransportError(c.server, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("read the scan answer of vigil server %s: %w", c.server, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return c.apiError(resp, answer, ScanScope)
	}
	return nil
}

// Wait asks for the decision on q until it is pass or fail, or until
// maxWait has passed; then it returns the last answer, pending or unknown,
// without an error. It asks again while the decision is pending, and while
// it is unknown for a commit (its push may not have reached the server
// yet); unknown for an image is final. Answers 429, 502, 503 and 504 are
// asked again too, after the Retry-After the server gave. progress, when
// not nil, is called with each answer Wait will ask again after.
// maxWait zero asks once. With Config.RequestScan it first asks the
// server to scan q (RequestScan).
func (c *Client) Wait(ctx context.Context, q Query, maxWait time.Duration, progress func(*Answer)) (*Answer, error) {
	deadline := time.Now().Add(maxWait)
	if c.scan {
		if err := c.RequestScan(ctx, q); err != nil {
			return nil, err
		}
	}
	delay := c.pollFirst
	for {
		a, err := c.Gate(ctx, q)
		var apiErr *Error
		var sleep time.Duration
		switch {
		case err == nil && !a.waitable(q):
			return a, nil
		case err == nil:
			sleep = delay
		case errors.As(err, &apiErr) && apiErr.Temporary():
			sleep = max(apiErr.RetryAfter, delay)
		default:
			return nil, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return a, err // the last answer, or the last temporary error
		}
		if err == nil && progress != nil {
			progress(a)
		}
		t := time.NewTimer(min(jitter(sleep), remaining))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for the gate of %s: %w", q, ctx.Err())
		case <-t.C:
		}
		delay = min(time.Duration(float64(delay)*1.5), c.pollMax)
	}
}

// waitable reports whether the answer may still change.
func (a *Answer) waitable(q Query) bool {
	return a.Decision == ci.Pending || (a.Decision == ci.Unknown && q.Image == "")
}

// apiError explains an error answer to a request that needs scope.
func (c *Client) apiError(resp *http.Response, body []byte, scope string) error {
	e := &Error{Server: c.server, StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var apiErr struct{ Code, Message string }
	if json.Unmarshal(body, &apiErr) == nil {
		e.Code, e.Message = apiErr.Code, apiErr.Message
	}
	hint := ""
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint = "the access token was refused; check VIGIL_CLIENT_ID / VIGIL_CLIENT_SECRET"
	case http.StatusForbidden:
		hint = "the client lacks scope " + scope + "; use a client created with --scopes " + strings.Join(scopes(scope == ScanScope), ",")
	}
	switch {
	case e.Message == "":
		e.Message = hint
	case hint != "":
		e.Message += "; " + hint
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// tokenError explains a failure to get an access token.
func (c *Client) tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Server: c.server, Code: strings.ToUpper(re.ErrorCode)}
		if re.Response != nil {
			e.StatusCode = re.Response.StatusCode
			e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		}
		switch {
		case re.ErrorCode == "invalid_client" || e.StatusCode == http.StatusUnauthorized:
			e.Message = "the token endpoint refused the client credentials; check VIGIL_CLIENT_ID / VIGIL_CLIENT_SECRET"
		case re.ErrorCode == "invalid_scope":
			want := strings.Join(scopes(c.scan), ",")
			e.Message = "the client may not have scope " + want + "; use a client created with --scopes " + want
		default:
			// Not the body: a token endpoint has no business echoing
			// credentials, but it is not ours to trust.
			e.Message = "the token endpoint refused to issue an access token"
			if re.ErrorDescription != "" {
				e.Message += ": " + re.ErrorDescription
			}
		}
		return e
	}
	return TransportError(c.server, err)
}

// TransportError explains a failure to talk to the server at all, with
// what to do about a certificate the client does not trust. Other Vigil
// clients of the server use it too.
func TransportError(server string, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		pin       *FingerprintError
	)
	switch {
	case errors.As(err, &pin):
		return fmt.Errorf("cannot reach vigil server %s: %w", server, pin)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("cannot reach vigil server %s: its certificate is not signed by a trusted authority; pass --ca-cert or --fingerprint (vigil serve prints it at start): %w", server, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("cannot reach vigil server %s: its certificate is not for this host name; use the name it was made for, or pass --fingerprint: %w", server, err)
	}
	return fmt.Errorf("cannot reach vigil server %s: %w", server, err)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func parseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h := strings.ToLower(strings.TrimSpace(s))
	h = strings.TrimPrefix(h, "sha256:")
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return fp, fmt.Errorf("fingerprint %q is not a SHA-256 in hex, such as the AB:CD:… that `vigil serve` prints", s)
	}
	copy(fp[:], b)
	return fp, nil
}

func formatFingerprint(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}
