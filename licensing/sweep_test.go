package licensing_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// TestSweepPrunesStoredAnswers: the periodic sweep deletes the answers
// stored before IdempotencyTTL (no retry can replay them any more) and
// keeps the younger ones, with no webhook anywhere.
func TestSweepPrunesStoredAnswers(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := t.Context()
		db := storetest.Open(t, dialect)
		clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
		cfg := licensing.DefaultConfig()
		cfg.Secret, cfg.Now, cfg.Logger = testSecret, clk.Now, storetest.Logger(t)
		cfg.DefaultLease = 30 * 24 * time.Hour
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
		ent, err := svc.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: 2})
		if err != nil {
			t.Fatal(err)
		}
		g, nonce, err := svc.Activate(ctx, licensing.ActivateRequest{TenantID: tn.ID, ProductID: "com.example.app", ActivationCode: ent.ActivationCode, SeatID: "s"})
		if err != nil {
			t.Fatal(err)
		}
		refresh := func(key string) {
			t.Helper()
			ans, err := svc.Refresh(ctx, licensing.CallRequest{TenantID: tn.ID, Token: g.AccessToken, Nonce: nonce, IdempotencyKey: key, Request: []byte("refresh")})
			if err != nil {
				t.Fatal(err)
			}
			var grant licensing.Grant
			if err := json.Unmarshal(ans.Body, &grant); err != nil {
				t.Fatal(err)
			}
			g.AccessToken, nonce = grant.AccessToken, ans.Nonce
		}
		answers := func() int {
			var n int
			if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM licensing_idempotency").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		refresh("old-1")
		refresh("old-2")
		clk.Add(cfg.IdempotencyTTL + time.Minute)
		refresh("young")
		if n := answers(); n != 3 {
			t.Fatalf("%d stored answers, want 3", n)
		}
		if err := svc.SweepWebhooks(ctx); err != nil {
			t.Fatal(err)
		}
		if n := answers(); n != 1 {
			t.Errorf("after the sweep %d stored answers, want the young one", n)
		}
	})
}
