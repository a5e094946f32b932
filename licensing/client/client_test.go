package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/licensing/client"
)

// flaky sits in front of the Licensing API: the first attempts of a
// refresh get 503, then 429 with Retry-After, before one reaches the API.
type flaky struct {
	next http.Handler

	mu   sync.Mutex
	fail int // attempts still to refuse
	keys []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/activation/refresh" {
		f.mu.Lock()
		f.keys = append(f.keys, r.Header.Get(client.HeaderIdempotencyKey))
		fail := f.fail
		if fail > 0 {
			f.fail--
		}
		f.mu.Unlock()
		switch fail {
		case 2:
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
			return
		case 1:
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"code":"RATE_LIMITED","message":"slow down"}`))
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

type env struct {
	srv  *httptest.Server
	fl   *flaky
	ten  licensing.Tenant
	prod licensing.Product
	code string
}

func setup(t *testing.T) *env { return setupOn(t, store.SQLite) }

func setupOn(t *testing.T, dialect store.Dialect) *env {
	t.Helper()
	db := storetest.Open(t, dialect)
	cfg := licensing.DefaultConfig()
	cfg.Secret = []byte("client-test-secret-of-32-bytes-or-more")
	cfg.Logger = storetest.Logger(t)
	svc, err := licensing.New(t.Context(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ten, err := svc.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := svc.CreateProduct(ctx, "com.example.app", "App")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := svc.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: ten.ID, ProductID: prod.ID, Seats: 2, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	acfg := api.DefaultConfig()
	acfg.ActivateRate, acfg.ActivateBurst = rate.Inf, 1
	fl := &flaky{next: api.New(svc, acfg)}
	srv := httptest.NewUnstartedServer(fl)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut by Close
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &env{srv: srv, fl: fl, ten: ten, prod: prod, code: ent.ActivationCode}
}

func (e *env) client(t *testing.T, st client.Store) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: e.srv.URL, TenantID: e.ten.ID, ProductID: e.prod.ID, HTTPClient: e.srv.Client(), State: st})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetriesKeepTheIdempotencyKey(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	c := e.client(t, nil)
	if _, err := c.Activate(ctx, e.code, "host-1", nil); err != nil {
		t.Fatal(err)
	}
	before, _ := c.State(ctx)
	e.fl.mu.Lock()
	e.fl.fail = 2
	e.fl.mu.Unlock()
	g, err := c.Refresh(ctx)
	if err != nil {
		t.Fatalf("refresh through a 503 and a 429: %v", err)
	}
	after, _ := c.State(ctx)
	if after.Nonce == before.Nonce || after.AccessToken != g.AccessToken {
		t.Errorf("the state was not moved on: %+v", after)
	}
	e.fl.mu.Lock()
	keys := e.fl.keys
	e.fl.mu.Unlock()
	if len(keys) != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("Idempotency-Keys of the three attempts: %q; want one key", keys)
	}
	// The next call has a key of its own.
	if _, err := c.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.fl.mu.Lock()
	if k := e.fl.keys[len(e.fl.keys)-1]; k == keys[0] {
		t.Errorf("a new call reused the key %q", k)
	}
	e.fl.mu.Unlock()
}

func TestRetryAfterTooLongIsReturned(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"code":"RATE_LIMITED","message":"too many activation attempts: retry after 3600s"}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Config{BaseURL: srv.URL, TenantID: "t", ProductID: "p", MaxRetryWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Activate(t.Context(), "CODE", "seat", nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != client.CodeRateLimited || ae.Status != 429 || ae.RetryAfter != time.Hour {
		t.Fatalf("activate against a limit of an hour: %#v", err)
	}
}

func TestNotActivated(t *testing.T) {
	c, err := client.New(client.Config{BaseURL: "https://127.0.0.1:1", TenantID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func(context.Context) error{
		"Get":        func(ctx context.Context) error { _, err := c.Get(ctx); return err },
		"Refresh":    func(ctx context.Context) error { _, err := c.Refresh(ctx); return err },
		"Deactivate": c.Deactivate,
	} {
		if err := call(t.Context()); !errors.Is(err, client.ErrNotActivated) {
			t.Errorf("%s without an activation: %v, want ErrNotActivated", name, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []client.Config{
		{BaseURL: "https://h"},
		{BaseURL: "ftp://h", TenantID: "t"},
		{BaseURL: "licensing.example.com", TenantID: "t"},
	} {
		if _, err := client.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestFileStore(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sub", "license.json")
	fs := &client.FileStore{Path: path}
	if _, err := fs.Load(ctx); !errors.Is(err, client.ErrNotActivated) {
		t.Fatalf("load of no file: %v", err)
	}
	want := client.State{ActivationID: "a", AccessToken: "tok", Nonce: "n1", LeaseExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, n := range []string{"n1", "n2"} {
		want.Nonce = n
		if err := fs.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := fs.Load(ctx)
		if err != nil || got != want {
			t.Fatalf("load after save: %+v %v; want %+v", got, err, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(ctx); err == nil || errors.Is(err, client.ErrNotActivated) {
		t.Errorf("load of a corrupt file: %v", err)
	}
	if err := fs.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fs.Clear(ctx); err != nil {
		t.Errorf("clear twice: %v", err)
	}
}

// TestConcurrentRetriesGetOneAnswer sends the same refresh (same nonce,
// same Idempotency-Key) many times at once, as a client whose retries
// overtake its first attempt would: the nonce turns once and every attempt
// gets that one answer, whichever path of the server served it.
func TestConcurrentRetriesGetOneAnswer(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setupOn(t, dialect)
		ctx := t.Context()
		c := e.client(t, nil)
		if _, err := c.Activate(ctx, e.code, "host-1", nil); err != nil {
			t.Fatal(err)
		}
		st, _ := c.State(ctx)
		const n = 20
		type result struct {
			status        int
			nonce, replay string
			body          []byte
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/activation/refresh", nil)
				req.Header.Set("Authorization", "Bearer "+st.AccessToken)
				req.Header.Set(client.HeaderTenant, e.ten.ID)
				req.Header.Set(client.HeaderNonce, st.Nonce)
				req.Header.Set(client.HeaderIdempotencyKey, "retry-1")
				<-start
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				results[i] = result{resp.StatusCode, resp.Header.Get(client.HeaderNonce), resp.Header.Get(client.HeaderReplayed), b}
			})
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i, r := range results {
			if r.status != http.StatusOK || r.nonce == "" || r.nonce != results[0].nonce || !bytes.Equal(r.body, results[0].body) {
				t.Fatalf("attempt %d: %d nonce %q %s; want 200 with the answer of attempt 0 (nonce %q)", i, r.status, r.nonce, r.body, results[0].nonce)
			}
			if r.replay != "true" {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d attempts were answered as new; want exactly 1, the rest replays", fresh)
		}
		// The chain goes on from that one answer.
		st.Nonce = results[0].nonce
		var g client.Grant
		if err := json.Unmarshal(results[0].body, &g); err != nil {
			t.Fatal(err)
		}
		st.AccessToken = g.AccessToken
		ms := &client.MemoryStore{}
		ms.Save(ctx, st)
		if _, err := e.client(t, ms).Refresh(ctx); err != nil {
			t.Errorf("refresh after the retries: %v", err)
		}
	})
}
