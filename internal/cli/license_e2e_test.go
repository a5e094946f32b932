package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/client"
)

// licenseEnv is a running `vigil serve` and what the tests seed in it.
type licenseEnv struct {
	t         *testing.T
	base      string
	storeArgs []string
	tlsConfig func() *tls.Config
}

// startLicensing runs `vigil serve` over HTTPS on the dialect's store. Its
// clients trust the self-signed certificate in DATA/tls and pin the
// fingerprint the server printed.
func startLicensing(t *testing.T, dialect store.Dialect) *licenseEnv {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	storeArgs := []string{"--data", data}
	if dialect == store.Postgres {
		storeArgs = append(storeArgs, "--database", storetest.DSN(t, dialect))
	}
	// A per-tenant burst above the 50 racing activations of
	// testSeatsConcurrent: there, seats decide, not the rate limit.
	base, banner := serveOn(t, append(storeArgs, "--activation-burst", "100")...)
	fp := field(banner, "TLS certificate SHA-256 fingerprint")
	pem, err := os.ReadFile(filepath.Join(data, "tls", httpx.CertFile))
	if err != nil || fp == "" {
		t.Fatalf("no certificate (%v) or no fingerprint printed:\n%s", err, banner)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", httpx.CertFile)
	}
	cfg := func() *tls.Config {
		return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if got := httpx.Fingerprint(cs.PeerCertificates[0].Raw); got != fp {
					return fmt.Errorf("server certificate %s is not the pinned %s", got, fp)
				}
				return nil
			}}
	}
	return &licenseEnv{t: t, base: base, storeArgs: storeArgs, tlsConfig: cfg}
}

// entitlement seeds a tenant, a product and an entitlement with the CLI
// and returns the tenant, the product and the activation code.
func (e *licenseEnv) entitlement(args ...string) (tenant, product, code string) {
	e.t.Helper()
	with := func(a ...string) []string { return append(append(a, "--json"), e.storeArgs...) }
	var tn, pr struct{ ID string }
	vigilJSON(e.t, &tn, with("tenants", "create", "--name", "Acme")...)
	vigilJSON(e.t, &pr, with("products", "create", "--name", "App")...)
	var ent struct {
		Code string `json:"activation_code"`
	}
	vigilJSON(e.t, &ent, with(append([]string{"entitlements", "create", "--tenant", tn.ID, "--product", pr.ID}, args...)...)...)
	if tn.ID == "" || pr.ID == "" || ent.Code == "" {
		e.t.Fatalf("seeding printed tenant %q, product %q, code %q", tn.ID, pr.ID, ent.Code)
	}
	return tn.ID, pr.ID, ent.Code
}

// transport returns an HTTPS transport to the server from the source
// address (nil for the default).
func (e *licenseEnv) transport(from net.IP) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	return &http.Transport{TLSClientConfig: e.tlsConfig(), DialContext: d.DialContext, ForceAttemptHTTP2: true}
}

func (e *licenseEnv) client(tenant, product string, st client.Store, rt http.RoundTripper, edit ...func(*client.Config)) *client.Client {
	e.t.Helper()
	if rt == nil {
		rt = e.transport(nil)
	}
	cfg := client.Config{BaseURL: e.base, TenantID: tenant, ProductID: product, State: st,
		HTTPClient: &http.Client{Transport: rt, Timeout: time.Minute}}
	for _, f := range edit {
		f(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// loseAnswer lets requests to a path reach the server, reads the answer
// and then drops it once, as a connection cut on the way back would: the
// client sees a network error.
type loseAnswer struct {
	next http.RoundTripper
	path string

	mu     sync.Mutex
	armed  bool
	lost   *http.Response // the answer that was dropped
	lostB  []byte
	reqs   []*http.Request // the requests to path, retries included
	answer []http.Header   // headers of the answers delivered
}

func (l *loseAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil || r.URL.Path != l.path {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
	if l.armed {
		l.armed = false
		l.lostB, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		l.lost = resp
		return nil, errors.New("connection reset by peer (simulated)")
	}
	l.answer = append(l.answer, resp.Header.Clone())
	return resp, nil
}

func apiCode(err error) string {
	var e *client.APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestLicensingEndToEnd drives the Licensing API of a real `vigil serve`
// over HTTPS with the client package, on SQLite and PostgreSQL.
func TestLicensingEndToEnd(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		env := startLicensing(t, dialect)
		ctx := t.Context()

		t.Run("chain", func(t *testing.T) { testChain(t, ctx, env) })
		t.Run("seats under concurrency", func(t *testing.T) { testSeatsConcurrent(t, ctx, env) })
		t.Run("lease runs out", func(t *testing.T) { testLeaseRunsOut(t, ctx, env) })
		t.Run("offline through files", func(t *testing.T) { testOfflineFiles(t, ctx, env) })
	})
}

func testChain(t *testing.T, ctx context.Context, env *licenseEnv) {
	tenant, product, code := env.entitlement("--seats", "2", "--lease", "1h", "--counted-feature", "jobs=1", "--feature", "export")
	statePath := filepath.Join(t.TempDir(), "app", "license.json")
	lost := &loseAnswer{next: env.transport(nil), path: "/api/v1/activation/refresh"}
	c := env.client(tenant, product, &client.FileStore{Path: statePath}, lost)

	if _, err := c.Get(ctx); !errors.Is(err, client.ErrNotActivated) {
		t.Fatalf("Get before Activate: %v, want ErrNotActivated", err)
	}
	// A wrong code, product or tenant: the same refusal.
	for _, bad := range []struct{ tenant, product, code string }{
		{tenant, product, "AAAA-BBBB-CCCC-DDDD"}, {tenant, "other-product", code}, {"other-tenant", product, code},
	} {
		_, err := env.client(bad.tenant, bad.product, nil, nil).Activate(ctx, bad.code, "x", nil)
		var e *client.APIError
		if !errors.As(err, &e) || e.Code != client.CodeInvalidCredentials || e.Status != http.StatusUnauthorized {
			t.Errorf("activate with %+v: %v, want 401 %s", bad, err, client.CodeInvalidCredentials)
		}
	}

	g, err := c.Activate(ctx, code, "host-1", &client.ActivateOptions{SeatName: "build host"})
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	if g.AccessToken == "" || g.Entitlement.Seats != 2 || g.Entitlement.Features["jobs"].Limit != 1 || !g.LeaseExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("activate answered %+v", g)
	}
	fi, err := os.Stat(statePath)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	st0, _ := c.State(ctx)
	if st0.Nonce == "" || st0.ActivationID != g.ActivationID || st0.AccessToken != g.AccessToken {
		t.Fatalf("state after activate: %+v", st0)
	}

	// A chain of refreshes: each saves a new token and nonce, and the
	// lease never moves back.
	seenNonce, seenToken := map[string]bool{st0.Nonce: true}, map[string]bool{g.AccessToken: true}
	lease := g.LeaseExpiresAt
	var before client.State // the state before the last refresh
	for i := range 5 {
		before, _ = c.State(ctx)
		g, err := c.Refresh(ctx)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		st, _ := c.State(ctx)
		if seenNonce[st.Nonce] || seenToken[g.AccessToken] || st.AccessToken != g.AccessToken || g.LeaseExpiresAt.Before(lease) {
			t.Fatalf("refresh %d: nonce or token reused, or lease went back: %+v", i, st)
		}
		seenNonce[st.Nonce], seenToken[g.AccessToken], lease = true, true, g.LeaseExpiresAt
	}

	// The state survives a restart of the application.
	c = env.client(tenant, product, &client.FileStore{Path: statePath}, lost)
	s, err := c.Get(ctx)
	if err != nil || s.Activation.SeatID != "host-1" || s.Activation.SeatName != "build host" || s.Activation.Status != "active" {
		t.Fatalf("get after restart: %+v %v", s, err)
	}

	// A replayed nonce is refused, and the refusal does not break the
	// chain of the rightful client. (Get keeps the token, so only the
	// nonce is stale.)
	replayed, _ := c.State(ctx)
	if _, err := c.Get(ctx); err != nil {
		t.Fatal(err)
	}
	replayer := env.client(tenant, product, stateStore(t, replayed), nil)
	var ae *client.APIError
	if _, err := replayer.Refresh(ctx); !errors.As(err, &ae) || ae.Code != client.CodeNonceMismatch || ae.Status != http.StatusConflict {
		t.Errorf("refresh with a replayed nonce: %v, want 409 %s", err, client.CodeNonceMismatch)
	}
	// A token replaced by a refresh is refused whatever the nonce.
	if _, err := env.client(tenant, product, stateStore(t, before), nil).Get(ctx); apiCode(err) != client.CodeInvalidToken {
		t.Errorf("get with a replaced token: %v, want %s", err, client.CodeInvalidToken)
	}

	// Feature checkout: a refusal after the nonce was accepted still moves
	// the chain on, and the client follows it.
	if u, err := c.Checkout(ctx, "jobs"); err != nil || u.CheckedOut != 1 || u.InUse != 1 || u.Limit != 1 {
		t.Fatalf("checkout jobs: %+v %v", u, err)
	}
	if _, err := c.Checkout(ctx, "jobs"); apiCode(err) != client.CodeFeatureLimitReached {
		t.Errorf("second checkout of jobs (limit 1): %v, want %s", err, client.CodeFeatureLimitReached)
	}
	if u, err := c.Return(ctx, "jobs"); err != nil || u.CheckedOut != 0 {
		t.Errorf("return jobs: %+v %v", u, err)
	}
	if u, err := c.Track(ctx, "export", 3); err != nil || u.Tracked != 3 {
		t.Errorf("track export: %+v %v", u, err)
	}
	if _, err := c.Checkout(ctx, "nope"); apiCode(err) != client.CodeFeatureNotEntitled {
		t.Errorf("checkout of a feature not entitled: %v", err)
	}

	// A lost answer: the retry carries the same Idempotency-Key, nonce and
	// body, and gets the same answer instead of a lockout.
	lost.mu.Lock()
	lost.armed, lost.reqs, lost.answer = true, nil, nil
	lost.mu.Unlock()
	prev, _ := c.State(ctx)
	g2, err := c.Refresh(ctx)
	if err != nil {
		t.Fatalf("refresh with its first answer lost: %v", err)
	}
	lost.mu.Lock()
	if len(lost.reqs) != 2 || lost.lost == nil || len(lost.answer) != 1 {
		t.Fatalf("want one lost answer and one retry; got %d requests, %d answers", len(lost.reqs), len(lost.answer))
	}
	k1, k2 := lost.reqs[0].Header.Get(client.HeaderIdempotencyKey), lost.reqs[1].Header.Get(client.HeaderIdempotencyKey)
	n1, n2 := lost.reqs[0].Header.Get(client.HeaderNonce), lost.reqs[1].Header.Get(client.HeaderNonce)
	if k1 == "" || k1 != k2 || n1 != prev.Nonce || n2 != prev.Nonce {
		t.Errorf("the retry must resend the key and the nonce: keys %q %q, nonces %q %q (last %q)", k1, k2, n1, n2, prev.Nonce)
	}
	if lost.answer[0].Get(client.HeaderReplayed) != "true" || lost.answer[0].Get(client.HeaderNonce) != lost.lost.Header.Get(client.HeaderNonce) {
		t.Errorf("the retry was not answered from the stored answer: %v", lost.answer[0])
	}
	if !bytes.Contains(lost.lostB, []byte(g2.AccessToken)) {
		t.Errorf("the retry's token is not the lost answer's")
	}
	lost.mu.Unlock()
	if _, err := c.Get(ctx); err != nil {
		t.Fatalf("the chain after a replayed answer: %v", err)
	}

	// A lost nonce: the chain refuses, but deactivation needs only the
	// token, frees the seat and clears the state file.
	st, _ := c.State(ctx)
	st.Nonce = "lost"
	if err := (&client.FileStore{Path: statePath}).Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	c = env.client(tenant, product, &client.FileStore{Path: statePath}, nil)
	if _, err := c.Refresh(ctx); apiCode(err) != client.CodeNonceMismatch {
		t.Fatalf("refresh with a lost nonce: %v, want %s", err, client.CodeNonceMismatch)
	}
	if err := c.Deactivate(ctx); err != nil {
		t.Fatalf("deactivate with a lost nonce: %v", err)
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after deactivate: %v", err)
	}
	if _, err := c.Get(ctx); !errors.Is(err, client.ErrNotActivated) {
		t.Errorf("get after deactivate: %v", err)
	}
	// The old token is dead; the seat can be taken again.
	if _, err := env.client(tenant, product, stateStore(t, st), nil).Get(ctx); apiCode(err) != client.CodeNonceMismatch && apiCode(err) != client.CodeInvalidToken {
		t.Errorf("get with a deactivated token: %v", err)
	}
	if _, err := c.Activate(ctx, code, "host-1", nil); err != nil {
		t.Fatalf("activate again after deactivate: %v", err)
	}
	if err := c.Deactivate(ctx); err != nil {
		t.Fatal(err)
	}
}

// stateStore is a MemoryStore holding st.
func stateStore(t *testing.T, st client.State) client.Store {
	m := &client.MemoryStore{}
	if err := m.Save(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	return m
}

// testSeatsConcurrent activates 50 seats of a 5-seat entitlement at once,
// each client from its own loopback address so that the per-address
// limit of activation attempts does not decide.
func testSeatsConcurrent(t *testing.T, ctx context.Context, env *licenseEnv) {
	const clients, seats = 50, 5
	tenant, product, code := env.entitlement("--seats", fmt.Sprint(seats))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		byCode  = map[string]int{}
		winners []*client.Client
	)
	start := make(chan struct{})
	for i := range clients {
		c := env.client(tenant, product, nil, env.transport(net.IPv4(127, 0, 1, byte(i+1))), func(c *client.Config) { c.MaxRetries = -1 })
		wg.Go(func() {
			<-start
			_, err := c.Activate(ctx, code, fmt.Sprintf("seat-%d", i), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				byCode["OK"]++
				winners = append(winners, c)
			case apiCode(err) != "":
				byCode[apiCode(err)]++
			default:
				t.Errorf("activate seat-%d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	// Every attempt either won a seat or found none left.
	if byCode["OK"] != seats || byCode[client.CodeNoSeats] != clients-seats {
		t.Fatalf("%d clients on %d seats: %v; want exactly %d OK, the rest %s", clients, seats, byCode, seats, client.CodeNoSeats)
	}
	t.Logf("%d clients on %d seats: %v", clients, seats, byCode)
	for _, c := range winners {
		if _, err := c.Refresh(ctx); err != nil {
			t.Errorf("refresh of a seat won: %v", err)
		}
	}
}

// testLeaseRunsOut lets a 2s lease run out without a refresh: its seat
// goes to the next activation, and the old activation cannot refresh.
func testLeaseRunsOut(t *testing.T, ctx context.Context, env *licenseEnv) {
	tenant, product, code := env.entitlement("--seats", "1", "--lease", "2s")
	a := env.client(tenant, product, nil, env.transport(net.IPv4(127, 0, 2, 1)))
	b := env.client(tenant, product, nil, env.transport(net.IPv4(127, 0, 2, 2)))
	ga, err := a.Activate(ctx, code, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Activate(ctx, code, "b", nil); apiCode(err) != client.CodeNoSeats {
		t.Fatalf("activate a second seat of one: %v, want %s", err, client.CodeNoSeats)
	}
	time.Sleep(time.Until(ga.LeaseExpiresAt) + 100*time.Millisecond)
	if _, err := b.Activate(ctx, code, "b", nil); err != nil {
		t.Fatalf("activate after the lease of the only seat ran out: %v", err)
	}
	if _, err := a.Refresh(ctx); apiCode(err) != client.CodeLeaseExpired {
		t.Errorf("refresh after the lease ran out: %v, want %s", err, client.CodeLeaseExpired)
	}
}
