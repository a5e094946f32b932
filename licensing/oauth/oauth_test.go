package oauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	db    *store.DB
	cfg   oauth.Config
	srv   *oauth.Server
	ts    *httptest.Server
	clock *clock
	logs  *syncBuffer
}

// setup starts a server on a fresh database of the dialect, serving the
// OAuth endpoints and two protected API routes over TLS: /api/scans
// (scans:read) and /api/gate (gate:read), which answer the client ID.
func setup(t *testing.T, dialect store.Dialect, edit ...func(*oauth.Config)) *env {
	t.Helper()
	e := &env{db: storetest.Open(t, dialect), clock: &clock{t: time.Now()}, logs: &syncBuffer{}}
	cfg := oauth.DefaultConfig()
	cfg.Pepper = []byte("oauth-test-pepper-of-32-bytes-or-more")
	cfg.Issuer = "https://vigil.test"
	cfg.RateBurst = 1000
	cfg.Now = e.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, f := range edit {
		f(&cfg)
	}
	srv, err := oauth.New(context.Background(), e.db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg, e.srv = cfg, srv
	mux := http.NewServeMux()
	srv.Register(mux)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := oauth.ClaimsFromContext(r.Context())
		io.WriteString(w, c.ClientID)
	})
	mux.Handle("/api/scans", srv.Middleware("scans:read")(api))
	mux.Handle("/api/gate", srv.Middleware("gate:read")(api))
	e.ts = httptest.NewTLSServer(mux)
	t.Cleanup(e.ts.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *env) client(t *testing.T, name string, scopes ...string) (id, secret string) {
	t.Helper()
	id, secret, err := e.srv.CreateClient(context.Background(), name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return id, secret
}

// post sends a form to the server's path, with Basic credentials if
// basicID is not empty, and returns the response and its body.
func (e *env) post(t *testing.T, path string, form url.Values, basicID, basicSecret string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	return e.do(t, req)
}

func (e *env) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// token gets an access token by client_secret_post.
func (e *env) token(t *testing.T, id, secret string, scope ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	if len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	resp, body := e.post(t, "/oauth2/token", form, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token request: %s %s", resp.Status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken
}

// get calls an API route with the bearer token.
func (e *env) get(t *testing.T, path, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(t, req)
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return m
}
