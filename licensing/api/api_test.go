package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/api"
)

// clock is the service's clock, moved by tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      *testing.T
	db     *store.DB
	svc    *licensing.Service
	srv    *httptest.Server
	clock  *clock
	tenant licensing.Tenant
	prod   licensing.Product
}

func setup(t *testing.T, dialect store.Dialect) *env {
	t.Helper()
	db := storetest.Open(t, dialect)
	clk := &clock{t: time.Now().UTC()}
	cfg := licensing.DefaultConfig()
	cfg.Secret = []byte("api-test-secret-of-32-bytes-or-more")
	cfg.Now = clk.Now
	cfg.Logger = storetest.Logger(t)
	svc, err := licensing.New(t.Context(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	acfg := api.DefaultConfig()
	acfg.ActivateRate, acfg.ActivateBurst = rate.Inf, 1
	acfg.Logger = storetest.Logger(t)
	srv := httptest.NewTLSServer(api.New(svc, acfg))
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, svc: svc, srv: srv, clock: clk}
	if e.tenant, err = svc.CreateTenant(t.Context(), "Acme"); err != nil {
		t.Fatal(err)
	}
	if e.prod, err = svc.CreateProduct(t.Context(), "com.example.app", "App"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) entitle(ne licensing.NewEntitlement) licensing.CreatedEntitlement {
	e.t.Helper()
	ne.TenantID, ne.ProductID = e.tenant.ID, e.prod.ID
	if ne.Seats == 0 {
		ne.Seats = 1
	}
	ce, err := e.svc.CreateEntitlement(context.Background(), ne)
	if err != nil {
		e.t.Fatal(err)
	}
	return ce
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) code(t *testing.T) string {
	t.Helper()
	var b struct{ Code string }
	json.Unmarshal(r.body, &b)
	return b.Code
}

func (e *env) do(method, path string, headers map[string]string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// session is a client's view of an activation.
type session struct {
	token, nonce, id string
}

func (e *env) activate(code, seat, fingerprint string) (response, *session) {
	e.t.Helper()
	res := e.do("POST", "/api/v1/activate", map[string]string{api.HeaderTenant: e.tenant.ID, api.HeaderProduct: e.prod.ID},
		map[string]string{"activation_code": code, "seat_id": seat, "fingerprint": fingerprint})
	if res.status != http.StatusOK {
		return res, nil
	}
	var g licensing.Grant
	res.json(e.t, &g)
	return res, &session{token: g.AccessToken, nonce: res.header.Get(api.HeaderNonce), id: g.ActivationID}
}

func (e *env) mustActivate(code, seat string) *session {
	e.t.Helper()
	res, s := e.activate(code, seat, "")
	if s == nil {
		e.t.Fatalf("activate: %d %s", res.status, res.body)
	}
	if s.nonce == "" {
		e.t.Fatal("activate answered no N-Nonce")
	}
	return s
}

// call makes a chained call with the session's nonce, and keeps the
// new nonce (and token, on a refresh) when the call succeeds.
func (e *env) call(s *session, method, path, idemKey string, body any) response {
	e.t.Helper()
	h := map[string]string{"Authorization": "Bearer " + s.token, api.HeaderTenant: e.tenant.ID, api.HeaderNonce: s.nonce}
	if idemKey != "" {
		h[api.HeaderIdempotencyKey] = idemKey
	}
	res := e.do(method, path, h, body)
	if n := res.header.Get(api.HeaderNonce); n != "" {
		s.nonce = n
	}
	if res.status == http.StatusOK && path == "/api/v1/activation/refresh" {
		var g licensing.Grant
		res.json(e.t, &g)
		s.token = g.AccessToken
	}
	return res
}

func TestActivateAndRefreshChain(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Seats: 2, Features: map[string]licensing.Feature{"sso": {Kind: licensing.FeatureBoolean}}})
		if len(ce.ActivationCode) != 19 {
			t.Fatalf("activation code %q: want XXXX-XXXX-XXXX-XXXX", ce.ActivationCode)
		}
		res, s := e.activate(ce.ActivationCode, "laptop-1", "")
		if s == nil {
			t.Fatalf("activate: %d %s", res.status, res.body)
		}
		var g licensing.Grant
		res.json(t, &g)
		if g.Entitlement.Features["sso"].Kind != licensing.FeatureBoolean || g.LeaseExpiresAt.IsZero() {
			t.Errorf("grant = %+v", g)
		}

		res = e.call(s, "GET", "/api/v1/activation", "", nil)
		var st licensing.State
		res.json(t, &st)
		if res.status != 200 || st.Activation.ID != s.id || st.Activation.SeatID != "laptop-1" {
			t.Fatalf("get: %d %s", res.status, res.body)
		}
		seen := map[string]bool{s.nonce: true}
		for i := range 5 {
			oldToken := s.token
			e.clock.Add(time.Minute)
			res = e.call(s, "POST", "/api/v1/activation/refresh", "", nil)
			if res.status != 200 {
				t.Fatalf("refresh %d: %d %s", i, res.status, res.body)
			}
			if seen[s.nonce] {
				t.Fatalf("refresh %d: nonce %q issued twice", i, s.nonce)
			}
			seen[s.nonce] = true
			if oldToken == s.token {
				t.Fatalf("refresh %d: same token", i)
			}
			// The replaced token no longer works.
			old := &session{token: oldToken, nonce: s.nonce}
			if res := e.call(old, "GET", "/api/v1/activation", "", nil); res.status != 401 || res.code(t) != licensing.CodeInvalidToken {
				t.Fatalf("old token: %d %s", res.status, res.body)
			}
		}
	})
}

func TestReplayedNonceRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{})
		s := e.mustActivate(ce.ActivationCode, "seat")
		first := s.nonce
		if res := e.call(s, "GET", "/api/v1/activation", "", nil); res.status != 200 {
			t.Fatalf("get: %d %s", res.status, res.body)
		}
		replay := &session{token: s.token, nonce: first}
		res := e.call(replay, "GET", "/api/v1/activation", "", nil)
		if res.status != 409 || res.code(t) != licensing.CodeNonceMismatch {
			t.Fatalf("replayed nonce: %d %s", res.status, res.body)
		}
		if res.header.Get(api.HeaderNonce) != "" {
			t.Error("a refused nonce got a new one")
		}
		missing := &session{token: s.token}
		if res := e.call(missing, "GET", "/api/v1/activation", "", nil); res.status != 409 || res.code(t) != licensing.CodeNonceMismatch {
			t.Fatalf("missing nonce: %d %s", res.status, res.body)
		}
		// The chain still works with the last nonce.
		if res := e.call(s, "GET", "/api/v1/activation", "", nil); res.status != 200 {
			t.Fatalf("get after replay: %d %s", res.status, res.body)
		}
	})
}

func TestIdempotentRetry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{})
		s := e.mustActivate(ce.ActivationCode, "seat")
		before := *s
		first := e.call(s, "POST", "/api/v1/activation/refresh", "key-1", nil)
		if first.status != 200 {
			t.Fatalf("refresh: %d %s", first.status, first.body)
		}
		// The answer was lost: the client retries with what it had.
		retry := before
		second := e.call(&retry, "POST", "/api/v1/activation/refresh", "key-1", nil)
		if second.status != first.status || !bytes.Equal(second.body, first.body) ||
			second.header.Get(api.HeaderNonce) != first.header.Get(api.HeaderNonce) {
			t.Fatalf("retry: %d %s nonce %q; first %d %s nonce %q", second.status, second.body, second.header.Get(api.HeaderNonce),
				first.status, first.body, first.header.Get(api.HeaderNonce))
		}
		if second.header.Get(api.HeaderReplayed) != "true" {
			t.Error("retry not marked replayed")
		}
		// The same key for another request is refused.
		other := before
		if res := e.call(&other, "POST", "/api/v1/activation/features/x/track", "key-1", nil); res.status != 422 {
			t.Fatalf("reused key: %d %s", res.status, res.body)
		}
		// The chain goes on from the replayed answer.
		if res := e.call(&retry, "GET", "/api/v1/activation", "", nil); res.status != 200 {
			t.Fatalf("after retry: %d %s", res.status, res.body)
		}
	})
}

func TestLostNonceThenDeactivate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Seats: 1})
		s := e.mustActivate(ce.ActivationCode, "a")
		s.nonce = "lost"
		if res := e.call(s, "GET", "/api/v1/activation", "", nil); res.status != 409 {
			t.Fatalf("wrong nonce: %d %s", res.status, res.body)
		}
		h := map[string]string{"Authorization": "Bearer " + s.token, api.HeaderTenant: e.tenant.ID}
		if res := e.do("DELETE", "/api/v1/activation", h, nil); res.status != 204 {
			t.Fatalf("deactivate: %d %s", res.status, res.body)
		}
		if res := e.do("DELETE", "/api/v1/activation", h, nil); res.status != 204 {
			t.Fatalf("deactivate again: %d %s", res.status, res.body)
		}
		// The seat is free.
		e.mustActivate(ce.ActivationCode, "b")
	})
}

func TestSeatsUnderConcurrency(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		const seats, clients = 7, 200
		ce := e.entitle(licensing.NewEntitlement{Seats: seats})
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[string]int{}
		)
		for i := range clients {
			wg.Go(func() {
				res := e.do("POST", "/api/v1/activate", map[string]string{api.HeaderTenant: e.tenant.ID, api.HeaderProduct: e.prod.ID},
					map[string]string{"activation_code": ce.ActivationCode, "seat_id": "seat-" + string(rune('A'+i%26)) + time.Duration(i).String()})
				code := "OK"
				if res.status != 200 {
					code = res.code(t)
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes["OK"] != seats || codes[licensing.CodeNoSeats] != clients-seats {
			t.Fatalf("outcomes = %v, want %d OK and %d NO_SEATS", codes, seats, clients-seats)
		}
	})
}

func TestInvalidCredentialsIdentical(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{})
		other, err := e.svc.CreateTenant(t.Context(), "Other")
		if err != nil {
			t.Fatal(err)
		}
		try := func(tenant, product, code string) response {
			return e.do("POST", "/api/v1/activate", map[string]string{api.HeaderTenant: tenant, api.HeaderProduct: product},
				map[string]string{"activation_code": code, "seat_id": "s"})
		}
		cases := map[string]response{
			"wrong tenant":   try(other.ID, e.prod.ID, ce.ActivationCode),
			"wrong product":  try(e.tenant.ID, "com.example.other", ce.ActivationCode),
			"wrong code":     try(e.tenant.ID, e.prod.ID, licensing.NewActivationCode()),
			"malformed code": try(e.tenant.ID, e.prod.ID, "nope"),
		}
		want := cases["wrong code"]
		if want.status != 401 || want.code(t) != licensing.CodeInvalidCredentials {
			t.Fatalf("wrong code: %d %s", want.status, want.body)
		}
		for name, got := range cases {
			if got.status != want.status || !bytes.Equal(got.body, want.body) {
				t.Errorf("%s: %d %s; want %d %s", name, got.status, got.body, want.status, want.body)
			}
		}
		// Lower case and without dashes is the same code.
		norm := bytes.ToLower([]byte(ce.ActivationCode))
		if res, s := e.activate(string(bytes.ReplaceAll(norm, []byte("-"), nil)), "s", ""); s == nil {
			t.Fatalf("normalised code: %d %s", res.status, res.body)
		}
	})
}

func TestSuspendedAndExpired(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Seats: 2})
		s := e.mustActivate(ce.ActivationCode, "a")
		if err := e.svc.SuspendEntitlement(t.Context(), ce.ID); err != nil {
			t.Fatal(err)
		}
		if res, _ := e.activate(ce.ActivationCode, "b", ""); res.status != 403 || res.code(t) != licensing.CodeSuspended || !strings.Contains(string(res.body), "entitlement is suspended") {
			t.Fatalf("activate suspended: %d %s", res.status, res.body)
		}
		if res := e.call(s, "POST", "/api/v1/activation/refresh", "", nil); res.status != 403 || res.code(t) != licensing.CodeSuspended {
			t.Fatalf("refresh suspended: %d %s", res.status, res.body)
		}
		if err := e.svc.ResumeEntitlement(t.Context(), ce.ID); err != nil {
			t.Fatal(err)
		}
		if res := e.call(s, "POST", "/api/v1/activation/refresh", "", nil); res.status != 200 {
			t.Fatalf("refresh resumed: %d %s", res.status, res.body)
		}
		if err := e.svc.SuspendTenant(t.Context(), e.tenant.ID); err != nil {
			t.Fatal(err)
		}
		if res, _ := e.activate(ce.ActivationCode, "b", ""); res.status != 403 || res.code(t) != licensing.CodeSuspended || !strings.Contains(string(res.body), "tenant's account is suspended") {
			t.Fatalf("activate, tenant suspended: %d %s (the message must say it is the tenant)", res.status, res.body)
		}
		if err := e.svc.ResumeTenant(t.Context(), e.tenant.ID); err != nil {
			t.Fatal(err)
		}

		expired := e.entitle(licensing.NewEntitlement{ExpiresAt: e.clock.Now().Add(-time.Hour)})
		if res, _ := e.activate(expired.ActivationCode, "a", ""); res.status != 403 || res.code(t) != licensing.CodeExpired {
			t.Fatalf("activate expired: %d %s", res.status, res.body)
		}
	})
}

func TestLeaseRanOutFreesSeat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Seats: 1, Lease: time.Hour})
		a := e.mustActivate(ce.ActivationCode, "a")
		// Re-activating the same seat reuses it.
		if again := e.mustActivate(ce.ActivationCode, "a"); again.id != a.id {
			t.Fatalf("re-activation made activation %s, want %s", again.id, a.id)
		} else {
			a = again
		}
		if res, _ := e.activate(ce.ActivationCode, "b", ""); res.status != 409 || res.code(t) != licensing.CodeNoSeats {
			t.Fatalf("second seat: %d %s", res.status, res.body)
		}
		e.clock.Add(2 * time.Hour)
		if res, s := e.activate(ce.ActivationCode, "b", ""); s == nil {
			t.Fatalf("seat after the lease ran out: %d %s", res.status, res.body)
		}
		if res := e.call(a, "POST", "/api/v1/activation/refresh", "", nil); res.status != 401 || res.code(t) != licensing.CodeLeaseExpired {
			t.Fatalf("refresh after the lease ran out: %d %s", res.status, res.body)
		}
	})
}

func TestFingerprintBound(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Seats: 2})
		res, s := e.activate(ce.ActivationCode, "a", "fp-1")
		if s == nil {
			t.Fatalf("activate: %d %s", res.status, res.body)
		}
		if res, _ := e.activate(ce.ActivationCode, "a", "fp-2"); res.status != 403 || res.code(t) != licensing.CodeFingerprintMismatch {
			t.Fatalf("other machine: %d %s", res.status, res.body)
		}
		if res := e.call(s, "GET", "/api/v1/activation", "", nil); res.status != 403 || res.code(t) != licensing.CodeFingerprintMismatch {
			t.Fatalf("call without fingerprint: %d %s", res.status, res.body)
		}
	})
}

func TestCountedFeature(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ce := e.entitle(licensing.NewEntitlement{Seats: 2, Features: map[string]licensing.Feature{
			"export": {Kind: licensing.FeatureCounted, Limit: 2},
			"sso":    {Kind: licensing.FeatureBoolean},
		}})
		a := e.mustActivate(ce.ActivationCode, "a")
		b := e.mustActivate(ce.ActivationCode, "b")
		const export = "/api/v1/activation/features/export/"
		for range 2 {
			if res := e.call(a, "POST", export+"checkout", "", nil); res.status != 200 {
				t.Fatalf("checkout: %d %s", res.status, res.body)
			}
		}
		res := e.call(b, "POST", export+"checkout", "", nil)
		if res.status != 409 || res.code(t) != licensing.CodeFeatureLimitReached {
			t.Fatalf("checkout beyond the limit: %d %s", res.status, res.body)
		}
		if res.header.Get(api.HeaderNonce) == "" {
			t.Fatal("a refusal after the nonce was accepted answered no new nonce")
		}
		if res := e.call(b, "POST", export+"return", "", nil); res.status != 409 || res.code(t) != licensing.CodeFeatureNotCheckedOut {
			t.Fatalf("return of nothing: %d %s", res.status, res.body)
		}
		if res := e.call(a, "POST", export+"return", "", nil); res.status != 200 {
			t.Fatalf("return: %d %s", res.status, res.body)
		}
		res = e.call(b, "POST", export+"checkout", "", nil)
		var u licensing.FeatureUsage
		res.json(t, &u)
		if res.status != 200 || u.CheckedOut != 1 || u.InUse != 2 || u.Limit != 2 {
			t.Fatalf("checkout after return: %d %s", res.status, res.body)
		}
		if res := e.call(a, "POST", "/api/v1/activation/features/sso/checkout", "", nil); res.status != 200 {
			t.Fatalf("boolean feature: %d %s", res.status, res.body)
		}
		if res := e.call(a, "POST", "/api/v1/activation/features/audit/checkout", "", nil); res.status != 403 || res.code(t) != licensing.CodeFeatureNotEntitled {
			t.Fatalf("feature not entitled: %d %s", res.status, res.body)
		}
		res = e.call(a, "POST", "/api/v1/activation/features/sso/track", "", map[string]int{"amount": 3})
		res.json(t, &u)
		if res.status != 200 || u.Tracked != 3 {
			t.Fatalf("track: %d %s", res.status, res.body)
		}
	})
}
