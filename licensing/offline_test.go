package licensing_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/offline"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

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

type offlineEnv struct {
	t     testing.TB
	db    *store.DB
	svc   *licensing.Service
	clock *clock
	ent   licensing.CreatedEntitlement
	sk    *offline.ServerKey
}

func setupOffline(t testing.TB, dialect store.Dialect, seats int) *offlineEnv {
	t.Helper()
	ctx := t.Context()
	db := storetest.Open(t, dialect)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	cfg := licensing.DefaultConfig()
	cfg.Secret = testSecret
	cfg.Now, cfg.Logger = clk.Now, storetest.Logger(t)
	svc, err := licensing.New(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := svc.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateProduct(ctx, "com.example.app", "App"); err != nil {
		t.Fatal(err)
	}
	ent, err := svc.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: seats,
		Lease: 30 * 24 * time.Hour, Features: map[string]licensing.Feature{"export": {Kind: licensing.FeatureBoolean}, "jobs": {Kind: licensing.FeatureCounted, Limit: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := svc.OfflineKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &offlineEnv{t: t, db: db, svc: svc, clock: clk, ent: ent, sk: sk}
}

func (e *offlineEnv) params(seat string) offline.Params {
	return offline.Params{ProductID: "com.example.app", ActivationCode: e.ent.ActivationCode, SeatID: seat, Fingerprint: "fp-" + seat, Now: e.clock.Now()}
}

// seats counts the entitlement's seats in use, from the store.
func (e *offlineEnv) seats() int {
	e.t.Helper()
	var n int
	err := e.db.InLicensingTx(context.Background(), func(tx licensing.Tx) error {
		var err error
		n, err = tx.CountActiveSeats(context.Background(), e.ent.ID, e.clock.Now())
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	le, ok := licensing.AsError(err)
	if !ok || le.Code != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
	t.Logf("%s: %v", what, err)
}

func TestOfflineActivation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		for _, kem := range []string{offline.KEMX25519, offline.KEMMLKEM768X25519} {
			t.Run(kem, func(t *testing.T) {
				e := setupOffline(t, dialect, 1)
				ctx := t.Context()

				// The key set is stable: a second call gives the same keys.
				sk2, err := e.svc.OfflineKey(ctx, e.sk.TenantID)
				if err != nil {
					t.Fatal(err)
				}
				if sk2.Signing.KeyID != e.sk.Signing.KeyID || sk2.KEMs[1].KeyID != e.sk.KEMs[1].KeyID || len(sk2.KEMs) != 2 {
					t.Errorf("second OfflineKey differs: %+v vs %+v", sk2, e.sk)
				}

				p := e.params("host-1")
				p.KEM = kem
				req, ck, err := offline.NewRequest(e.sk, p, nil)
				if err != nil {
					t.Fatal(err)
				}
				ans, err := e.svc.OfflineActivate(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				st := &offline.State{}
				lic, err := offline.OpenAt(ans, ck, e.sk, st, e.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if lic.Kind != offline.KindLicense || lic.EntitlementID != e.ent.ID || lic.SeatID != "host-1" || lic.Fingerprint != "fp-host-1" ||
					lic.Features["jobs"].Limit != 3 || !lic.LeaseExpiresAt.Equal(e.clock.Now().Add(30*24*time.Hour)) || !lic.LastSeen.Equal(e.clock.Now()) {
					t.Errorf("license %+v", lic)
				}
				if n := e.seats(); n != 1 {
					t.Errorf("%d seats in use, want 1", n)
				}

				// The replay is refused and takes nothing.
				_, err = e.svc.OfflineActivate(ctx, req)
				wantCode(t, "replay", err, licensing.CodeOfflineReplayed)

				// The one seat is taken: another machine gets NO_SEATS.
				req2, _, _ := offline.NewRequest(e.sk, e.params("host-2"), nil)
				_, err = e.svc.OfflineActivate(ctx, req2)
				wantCode(t, "second seat", err, licensing.CodeNoSeats)

				// Refresh, a day later: a new lease.
				e.clock.Add(24 * time.Hour)
				rp := offline.Params{Type: offline.Refresh, ProductID: "com.example.app", SeatID: "host-1", Fingerprint: "fp-host-1", Now: e.clock.Now()}
				rreq, ck, err := offline.NewRequest(e.sk, rp, ck)
				if err != nil {
					t.Fatal(err)
				}
				rans, err := e.svc.OfflineActivate(ctx, rreq)
				if err != nil {
					t.Fatal(err)
				}
				rlic, err := offline.OpenAt(rans, ck, e.sk, st, e.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if rlic.ActivationID != lic.ActivationID || !rlic.LeaseExpiresAt.Equal(e.clock.Now().Add(30*24*time.Hour)) {
					t.Errorf("refreshed license %+v", rlic)
				}

				// A refresh made with another key (no proof) is refused,
				// the same as an unknown activation.
				_, stranger, _ := offline.NewRequest(e.sk, e.params("host-1"), nil)
				stranger.ActivationID = lic.ActivationID
				sreq, _, err := offline.NewRequest(e.sk, rp, stranger)
				if err != nil {
					t.Fatal(err)
				}
				_, err = e.svc.OfflineActivate(ctx, sreq)
				wantCode(t, "refresh with another key", err, licensing.CodeInvalidCredentials)
				rp.ActivationID = "no-such-activation"
				ureq, _, _ := offline.NewRequest(e.sk, rp, ck)
				_, err2 := e.svc.OfflineActivate(ctx, ureq)
				if err.Error() != err2.Error() {
					t.Errorf("another key: %v; unknown activation: %v; want the same", err, err2)
				}

				// Deactivate: the seat is freed and a receipt signed.
				dp := offline.Params{Type: offline.Deactivate, ProductID: "com.example.app", SeatID: "host-1", Fingerprint: "fp-host-1", Now: e.clock.Now()}
				dreq, ck, err := offline.NewRequest(e.sk, dp, ck)
				if err != nil {
					t.Fatal(err)
				}
				dans, err := e.svc.OfflineActivate(ctx, dreq)
				if err != nil {
					t.Fatal(err)
				}
				receipt, err := offline.OpenAt(dans, ck, e.sk, st, e.clock.Now())
				if err != nil {
					t.Fatal(err)
				}
				if receipt.Kind != offline.KindDeactivation || !receipt.DeactivatedAt.Equal(e.clock.Now()) || ck.ActivationID != "" {
					t.Errorf("receipt %+v", receipt)
				}
				if n := e.seats(); n != 0 {
					t.Errorf("%d seats in use after deactivation, want 0", n)
				}
				req3, ck3, _ := offline.NewRequest(e.sk, e.params("host-2"), nil)
				ans3, err := e.svc.OfflineActivate(ctx, req3)
				if err != nil {
					t.Fatalf("activation after the seat was freed: %v", err)
				}
				if _, err := offline.OpenAt(ans3, ck3, e.sk, st, e.clock.Now()); err != nil {
					t.Fatal(err)
				}

				// A refresh of the deactivated activation is refused.
				rp.ActivationID, rp.Now = lic.ActivationID, e.clock.Now()
				rreq2, _, _ := offline.NewRequest(e.sk, rp, ck)
				_, err = e.svc.OfflineActivate(ctx, rreq2)
				wantCode(t, "refresh after deactivation", err, licensing.CodeLeaseExpired)
			})
		}
	})
}

func TestOfflineRefusals(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setupOffline(t, dialect, 2)
		ctx := t.Context()

		// Tampered requests: no seat taken, a clear error.
		for name, tamper := range map[string]func(*offline.Envelope){
			"ciphertext": func(env *offline.Envelope) { env.Ciphertext[len(env.Ciphertext)/2] ^= 1 },
			"enc":        func(env *offline.Envelope) { env.Enc[0] ^= 1 },
			"key id":     func(env *offline.Envelope) { env.KeyID = e.sk.Signing.KeyID },
			"other key":  func(env *offline.Envelope) { env.KeyID = "ofk-unknown" },
			"kem":        func(env *offline.Envelope) { env.KEM, _ = offline.KEMID(offline.KEMMLKEM768X25519) },
		} {
			req, _, err := offline.NewRequest(e.sk, e.params("host-1"), nil)
			if err != nil {
				t.Fatal(err)
			}
			tamper(req)
			_, err = e.svc.OfflineActivate(ctx, req)
			wantCode(t, "tampered "+name, err, licensing.CodeOfflineInvalid)
		}
		if n := e.seats(); n != 0 {
			t.Errorf("tampered requests took %d seats", n)
		}

		// A wrong code and a wrong product answer as online: the same
		// INVALID_CREDENTIALS.
		p := e.params("host-1")
		p.ActivationCode = licensing.NewActivationCode()
		req, _, _ := offline.NewRequest(e.sk, p, nil)
		_, errCode := e.svc.OfflineActivate(ctx, req)
		wantCode(t, "wrong code", errCode, licensing.CodeInvalidCredentials)
		p = e.params("host-1")
		p.ProductID = "com.example.other"
		req, _, _ = offline.NewRequest(e.sk, p, nil)
		_, errProduct := e.svc.OfflineActivate(ctx, req)
		_, _, errOnline := e.svc.Activate(ctx, licensing.ActivateRequest{TenantID: e.sk.TenantID, ProductID: "com.example.app", ActivationCode: "AAAA-AAAA-AAAA-AAAA", SeatID: "x"})
		if errCode.Error() != errProduct.Error() || errCode.Error() != errOnline.Error() {
			t.Errorf("wrong code %v, wrong product %v, online %v: want the same", errCode, errProduct, errOnline)
		}

		// Stale: made four days ago.
		p = e.params("host-1")
		p.Now = e.clock.Now().Add(-offline.RequestMaxAge - time.Hour)
		req, _, _ = offline.NewRequest(e.sk, p, nil)
		_, err := e.svc.OfflineActivate(ctx, req)
		wantCode(t, "stale", err, licensing.CodeOfflineStale)

		// A suspended entitlement refuses.
		if err := e.svc.SuspendEntitlement(ctx, e.ent.ID); err != nil {
			t.Fatal(err)
		}
		req, _, _ = offline.NewRequest(e.sk, e.params("host-1"), nil)
		_, err = e.svc.OfflineActivate(ctx, req)
		wantCode(t, "suspended", err, licensing.CodeSuspended)
		if n := e.seats(); n != 0 {
			t.Errorf("refused requests took %d seats", n)
		}
		// The refused request was not recorded: once resumed, it works.
		if err := e.svc.ResumeEntitlement(ctx, e.ent.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.OfflineActivate(ctx, req); err != nil {
			t.Errorf("the same request after resume: %v", err)
		}

		// Online and offline share the seats: one online, one offline, and
		// the third of either kind is refused.
		if _, _, err := e.svc.Activate(ctx, licensing.ActivateRequest{TenantID: e.sk.TenantID, ProductID: "com.example.app",
			ActivationCode: e.ent.ActivationCode, SeatID: "online-1"}); err != nil {
			t.Fatal(err)
		}
		req, _, _ = offline.NewRequest(e.sk, e.params("host-3"), nil)
		_, err = e.svc.OfflineActivate(ctx, req)
		wantCode(t, "third seat offline", err, licensing.CodeNoSeats)
		_, _, err = e.svc.Activate(ctx, licensing.ActivateRequest{TenantID: e.sk.TenantID, ProductID: "com.example.app",
			ActivationCode: e.ent.ActivationCode, SeatID: "online-2"})
		wantCode(t, "third seat online", err, licensing.CodeNoSeats)

		// An offline lease that ran out frees its seat.
		e.clock.Add(31 * 24 * time.Hour)
		req, _, _ = offline.NewRequest(e.sk, e.params("host-3"), nil)
		if _, err := e.svc.OfflineActivate(ctx, req); err != nil {
			t.Errorf("after every lease ran out: %v", err)
		}

		// Unknown tenant: no key.
		if _, err := e.svc.OfflineKey(ctx, "no-such-tenant"); !errors.Is(err, licensing.ErrNotFound) {
			t.Errorf("OfflineKey of an unknown tenant: %v, want ErrNotFound", err)
		}
	})
}

func TestOfflineConcurrentSeats(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		const seats, clients = 5, 40
		e := setupOffline(t, dialect, seats)
		reqs := make([]*offline.Envelope, clients)
		for i := range reqs {
			var err error
			if reqs[i], _, err = offline.NewRequest(e.sk, e.params("host-"+string(rune('A'+i))), nil); err != nil {
				t.Fatal(err)
			}
		}
		var ok, noSeats atomic.Int32
		var wg sync.WaitGroup
		for _, req := range reqs {
			wg.Go(func() {
				_, err := e.svc.OfflineActivate(context.Background(), req)
				if le, isLE := licensing.AsError(err); err == nil {
					ok.Add(1)
				} else if isLE && le.Code == licensing.CodeNoSeats {
					noSeats.Add(1)
				} else {
					t.Errorf("concurrent activation: %v", err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != seats || noSeats.Load() != clients-seats {
			t.Errorf("%d activated, %d NO_SEATS; want %d and %d", ok.Load(), noSeats.Load(), seats, clients-seats)
		}
		if n := e.seats(); n != seats {
			t.Errorf("%d seats in use, want %d", n, seats)
		}
	})
}

// Offline activations and deactivations are licensing events like online
// ones: their webhook deliveries are written with the effect.
func TestOfflineEmitsWebhookEvents(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setupOffline(t, dialect, 1)
		ctx := t.Context()
		hook, err := e.svc.CreateWebhook(ctx, licensing.NewWebhook{TenantID: e.sk.TenantID, URL: "http://127.0.0.1:9/hooks"})
		if err != nil {
			t.Fatal(err)
		}
		req, ck, _ := offline.NewRequest(e.sk, e.params("host-1"), nil)
		ans, err := e.svc.OfflineActivate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := offline.OpenAt(ans, ck, e.sk, nil, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		dreq, _, _ := offline.NewRequest(e.sk, offline.Params{Type: offline.Deactivate, ProductID: "com.example.app", SeatID: "host-1",
			Fingerprint: "fp-host-1", Now: e.clock.Now()}, ck)
		if _, err := e.svc.OfflineActivate(ctx, dreq); err != nil {
			t.Fatal(err)
		}
		ds, _, err := e.svc.WebhookDeliveries(ctx, e.sk.TenantID, hook.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, d := range ds {
			types = append(types, d.EventType)
		}
		sort.Strings(types)
		want := []string{webhooks.EventActivated, webhooks.EventDeactivated, webhooks.EventSeatsExhausted}
		sort.Strings(want)
		if strings.Join(types, ",") != strings.Join(want, ",") {
			t.Errorf("deliveries of events %v, want %v", types, want)
		}
	})
}

// BenchmarkOfflineActivate measures offline activations served by the
// service, end to end (open, seat, sign, seal), on each dialect.
func BenchmarkOfflineActivate(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(string(dialect), func(b *testing.B) {
			e := setupOffline(b, dialect, 1_000_000)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				req, _, err := offline.NewRequest(e.sk, e.params(fmt.Sprintf("host-%d", i)), nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.svc.OfflineActivate(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
