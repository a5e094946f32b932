package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Headers of the Licensing API.
const (
	HeaderTenant         = "N-TenantId"
	HeaderProduct        = "N-ProductId"
	HeaderNonce          = "N-Nonce"
	HeaderFingerprint    = "N-Fingerprint"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

// Limits on what the client reads from the server.
const (
	maxAnswer = 1 << 20
	maxHeader = 1 << 10
)

// Config configures a Client. BaseURL and TenantID are required.
type Config struct {
	// BaseURL is the server's root, such as https://licensing.example.com.
	BaseURL string
	// TenantID and ProductID are sent as N-TenantId and N-ProductId.
	TenantID  string
	ProductID string
	// Fingerprint identifies the machine; when set it binds the seat at
	// activation and is sent as N-Fingerprint on every call of the chain.
	Fingerprint string
	// HTTPClient sends the requests; nil means http.DefaultClient. Set its
	// transport's TLS configuration to trust a private server.
	HTTPClient *http.Client
	// State keeps the activation between calls and restarts; nil means
	// a MemoryStore.
	State Store
	// MaxRetries is how many times a transient failure is retried (zero
	// means 4; negative means never).
	MaxRetries int
	// MaxRetryWait caps one wait between attempts, the server's
	// Retry-After included: an answer asking to wait longer is returned
	// as an error (zero means 30s).
	MaxRetryWait time.Duration
}

// Client calls the Licensing API for one seat. Its methods are safe for
// concurrent use; calls of the chain run one at a time, since each needs
// the nonce the previous one got.
type Client struct {
	cfg  Config
	base *url.URL
	hc   *http.Client

	mu     sync.Mutex
	state  State
	loaded bool
}

// New returns a client, after checking the configuration.
func New(cfg Config) (*Client, error) {
	if cfg.TenantID == "" {
		return nil, errors.New("client: TenantID is required")
	}
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want https://host[:port]", cfg.BaseURL)
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 4
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 30 * time.Second
	}
	if cfg.State == nil {
		cfg.State = &MemoryStore{}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{cfg: cfg, base: u, hc: hc}, nil
}

// Entitlement is what an activation is entitled to.
type Entitlement struct {
	ID           string             `json:"id"`
	TenantID     string             `json:"tenant_id"`
	ProductID    string             `json:"product_id"`
	Seats        int                `json:"seats"`
	ExpiresAt    time.Time          `json:"expires_at,omitzero"`
	LeaseSeconds int64              `json:"lease_seconds"`
	Features     map[string]Feature `json:"features"`
	Status       string             `json:"status"`
	CreatedAt    time.Time          `json:"created_at"`
}

// Feature is a feature of the entitlement: "boolean", or "counted" with at
// most Limit checked out at once across the entitlement's seats.
type Feature struct {
	Kind  string `json:"kind"`
	Limit int    `json:"limit,omitempty"`
}

// Grant is the answer of Activate and Refresh.
type Grant struct {
	AccessToken    string      `json:"access_token"`
	ActivationID   string      `json:"activation_id"`
	LeaseExpiresAt time.Time   `json:"lease_expires_at"`
	Entitlement    Entitlement `json:"entitlement"`
}

// Activation is the state of the seat as the server keeps it.
type Activation struct {
	ID             string    `json:"id"`
	SeatID         string    `json:"seat_id"`
	SeatName       string    `json:"seat_name,omitempty"`
	Status         string    `json:"status"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	CreatedAt      time.Time `json:"created_at"`
	RefreshedAt    time.Time `json:"refreshed_at"`
}

// Status is the answer of Get.
type Status struct {
	Activation  Activation  `json:"activation"`
	Entitlement Entitlement `json:"entitlement"`
}

// FeatureUsage is the answer of Checkout, Return and Track.
type FeatureUsage struct {
	Feature    string `json:"feature"`
	Kind       string `json:"kind"`
	CheckedOut int    `json:"checked_out"`
	InUse      int    `json:"in_use"`
	Limit      int    `json:"limit,omitempty"`
	Tracked    int64  `json:"tracked"`
}

// ActivateOptions are the optional parts of an activation.
type ActivateOptions struct {
	// SeatName is a name for people, shown in the vendor's back office.
	SeatName string
}

// Activate takes the seat seatID of the entitlement that code unlocks and
// saves the token and the first nonce. Activating a seat that is active
// already retakes it, with a new token and nonce.
func (c *Client) Activate(ctx context.Context, code, seatID string, opts *ActivateOptions) (*Grant, error) {
	if opts == nil {
		opts = &ActivateOptions{}
	}
	body, err := json.Marshal(map[string]string{
		"activation_code": code, "seat_id": seatID, "seat_name": opts.SeatName, "fingerprint": c.cfg.Fingerprint,
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ans, err := c.do(ctx, http.MethodPost, "/api/v1/activate", body, func(h http.Header) {
		h.Set(HeaderProduct, c.cfg.ProductID)
	})
	if err != nil {
		return nil, err
	}
	if err := ans.apiError(); err != nil {
		return nil, err
	}
	var g Grant
	if err := ans.decode(&g); err != nil {
		return nil, err
	}
	nonce := ans.header.Get(HeaderNonce)
	if g.AccessToken == "" || g.ActivationID == "" || nonce == "" {
		return nil, errors.New("client: the activation answer has no access token, activation ID or N-Nonce")
	}
	st := State{ActivationID: g.ActivationID, AccessToken: g.AccessToken, Nonce: nonce, LeaseExpiresAt: g.LeaseExpiresAt}
	if err := c.save(ctx, st); err != nil {
		return nil, err
	}
	return &g, nil
}

// Get returns the state of the activation and its entitlement.
func (c *Client) Get(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.chain(ctx, http.MethodGet, "/api/v1/activation", nil, &s, nil); err != nil {
		return nil, err
	}
	return &s, nil
}

// Refresh renews the lease; the new token and nonce are saved.
func (c *Client) Refresh(ctx context.Context) (*Grant, error) {
	var g Grant
	err := c.chain(ctx, http.MethodPost, "/api/v1/activation/refresh", nil, &g, func(st *State) {
		if g.AccessToken != "" {
			st.AccessToken, st.LeaseExpiresAt = g.AccessToken, g.LeaseExpiresAt
		}
	})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// Checkout checks out one unit of a counted feature, or confirms that a
// boolean feature is entitled.
func (c *Client) Checkout(ctx context.Context, feature string) (*FeatureUsage, error) {
	return c.feature(ctx, feature, "checkout", nil)
}

// Return gives back one unit of a counted feature.
func (c *Client) Return(ctx context.Context, feature string) (*FeatureUsage, error) {
	return c.feature(ctx, feature, "return", nil)
}

// Track records amount units of usage of a feature: 1 to
// licensing.MaxTrackAmount (1,000,000), 0 meaning 1. The server refuses
// any other amount (INVALID_FIELD) without consuming the nonce.
func (c *Client) Track(ctx context.Context, feature string, amount int64) (*FeatureUsage, error) {
	body, err := json.Marshal(map[string]int64{"amount": amount})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return c.feature(ctx, feature, "track", body)
}

func (c *Client) feature(ctx context.Context, feature, op string, body []byte) (*FeatureUsage, error) {
	if feature == "" || strings.ContainsAny(feature, "/?#") {
		return nil, fmt.Errorf("client: feature key %q: want a non-empty key without / ? #", feature)
	}
	var u FeatureUsage
	if err := c.chain(ctx, http.MethodPost, "/api/v1/activation/features/"+url.PathEscape(feature)+"/"+op, body, &u, nil); err != nil {
		return nil, err
	}
	return &u, nil
}

// Deactivate frees the seat and clears the saved state. It needs only the
// token, not the nonce, so a client that lost its nonce can still free its
// seat. Deactivating twice is not an error.
func (c *Client) Deactivate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current(ctx)
	if err != nil {
		return err
	}
	ans, err := c.do(ctx, http.MethodDelete, "/api/v1/activation", nil, func(h http.Header) {
		h.Set("Authorization", "Bearer "+st.AccessToken)
	})
	if err != nil {
		return err
	}
	if err := ans.apiError(); err != nil {
		return err
	}
	if err := c.cfg.State.Clear(ctx); err != nil {
		return fmt.Errorf("client: clear state: %w", err)
	}
	c.state, c.loaded = State{}, true
	return nil
}

// State returns a copy of the saved state (ErrNotActivated when there is
// none).
func (c *Client) State(ctx context.Context) (State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current(ctx)
}

// current returns the state, loading it from the store on first use.
// c.mu is held.
func (c *Client) current(ctx context.Context) (State, error) {
	if !c.loaded {
		st, err := c.cfg.State.Load(ctx)
		if errors.Is(err, ErrNotActivated) {
			st, err = State{}, nil
		}
		if err != nil {
			return State{}, fmt.Errorf("client: load state: %w", err)
		}
		c.state, c.loaded = st, true
	}
	if c.state.AccessToken == "" || c.state.ActivationID == "" {
		return State{}, ErrNotActivated
	}
	return c.state, nil
}

// save stores st and then keeps it. c.mu is held.
func (c *Client) save(ctx context.Context, st State) error {
	if err := c.cfg.State.Save(ctx, st); err != nil {
		// Keep it in memory: the next call from this process still works.
		c.state, c.loaded = st, true
		return fmt.Errorf("client: save state: %w", err)
	}
	c.state, c.loaded = st, true
	return nil
}

// chain makes a call of the nonce chain: it sends the token and the last
// nonce with a fresh Idempotency-Key, retries transient failures with the
// same key, saves the answer's nonce (and what update takes from the
// decoded answer), and decodes a 2xx answer into out.
func (c *Client) chain(ctx context.Context, method, path string, body []byte, out any, update func(*State)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current(ctx)
	if err != nil {
		return err
	}
	key := newKey()
	ans, err := c.do(ctx, method, path, body, func(h http.Header) {
		h.Set("Authorization", "Bearer "+st.AccessToken)
		h.Set(HeaderNonce, st.Nonce)
		h.Set(HeaderIdempotencyKey, key)
		if c.cfg.Fingerprint != "" {
			h.Set(HeaderFingerprint, c.cfg.Fingerprint)
		}
	})
	if err != nil {
		return err
	}
	next := ans.header.Get(HeaderNonce)
	apiErr := ans.apiError()
	if apiErr == nil {
		if err := ans.decode(out); err != nil {
			return err
		}
	}
	if next == "" { // refused before the nonce was accepted: the chain is where it was
		if apiErr != nil {
			return apiErr
		}
		return fmt.Errorf("client: %s %s answered %d without an N-Nonce", method, path, ans.status)
	}
	st.Nonce = next
	if apiErr == nil && update != nil {
		update(&st)
	}
	if err := c.save(ctx, st); err != nil {
		return err
	}
	return apiErr
}

// answer is a response read whole (bounded).
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a *answer) apiError() error {
	if a.status >= 200 && a.status < 300 {
		return nil
	}
	e := &APIError{Status: a.status}
	if json.Unmarshal(a.body, e) != nil || e.Code == "" {
		e.Code, e.Message = "", fmt.Sprintf("unexpected answer %d: %s", a.status, snippet(a.body))
	}
	e.RetryAfter = retryAfter(a.header.Get("Retry-After"), time.Now())
	return e
}

func (a *answer) decode(out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("client: decode answer %d: %w", a.status, err)
	}
	return nil
}

// do sends the request, retrying network errors, 5xx and 429 answers with
// the same headers and body, and returns the last answer. set sets the
// request's own headers.
func (c *Client) do(ctx context.Context, method, path string, body []byte, set func(http.Header)) (*answer, error) {
	target := c.base.String() + path
	for attempt := 0; ; attempt++ {
		ans, err := c.send(ctx, method, target, body, set)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
		}
		wait, retry := c.backoff(attempt), false
		switch {
		case err != nil:
			retry = true
		case ans.status == http.StatusTooManyRequests || ans.status == http.StatusServiceUnavailable:
			retry = true
			if ra := retryAfter(ans.header.Get("Retry-After"), time.Now()); ra > 0 {
				wait = ra
			}
		case ans.status >= 500:
			retry = true
		}
		if !retry {
			return ans, nil
		}
		if attempt >= c.cfg.MaxRetries || wait > c.cfg.MaxRetryWait {
			if err != nil {
				return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
			}
			return ans, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("client: %s %s: %w", method, path, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the wait before retry attempt+1: exponential from 100ms,
// capped at 5s (and MaxRetryWait), with full jitter on the upper half.
func (c *Client) backoff(attempt int) time.Duration {
	d := min(100*time.Millisecond<<min(attempt, 10), 5*time.Second, c.cfg.MaxRetryWait)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1)) // #nosec G404 -- retry jitter, not a secret
}

func (c *Client) send(ctx context.Context, method, target string, body []byte, set func(http.Header)) (*answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderTenant, c.cfg.TenantID)
	set(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("the answer is larger than %d bytes", maxAnswer)
	}
	if n := resp.Header.Get(HeaderNonce); len(n) > maxHeader {
		return nil, fmt.Errorf("the N-Nonce answered is longer than %d bytes", maxHeader)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// newKey returns a random Idempotency-Key (128 bits).
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
