package store_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// TestFeatureUsageSaturates: tracked usage stops at math.MaxInt64 on both
// write paths instead of failing (PostgreSQL) or turning into a float
// (SQLite), and negative usage is refused.
func TestFeatureUsageSaturates(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		tn, err := db.CreateTenant(ctx, licensing.Tenant{Name: "Acme"})
		if err != nil {
			t.Fatal(err)
		}
		pr, err := db.CreateProduct(ctx, licensing.Product{Name: "App"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := db.CreateEntitlement(ctx, licensing.StoredEntitlement{TenantID: tn.ID, ProductID: pr.ID, Seats: 1, Lease: time.Hour, CodeHash: "code"})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		act := licensing.StoredActivation{ID: "act-1", EntitlementID: e.ID, SeatID: "s", TokenJTI: "j", NonceHash: "n",
			LeaseExpiresAt: now.Add(time.Hour), Status: licensing.StatusActive, CreatedAt: now, RefreshedAt: now}
		add := func(checkedOut int, tracked int64) (int, int64, error) {
			var c int
			var tr int64
			err := db.InLicensingTx(ctx, func(tx licensing.Tx) error {
				var err error
				c, tr, err = tx.AddFeatureUsage(ctx, "act-1", "f", checkedOut, tracked)
				return err
			})
			return c, tr, err
		}
		if err := db.InLicensingTx(ctx, func(tx licensing.Tx) error { _, err := tx.InsertActivation(ctx, act); return err }); err != nil {
			t.Fatal(err)
		}
		if _, tr, err := add(1, math.MaxInt64-5); err != nil || tr != math.MaxInt64-5 {
			t.Fatalf("first add: %d, %v", tr, err)
		}
		if _, tr, err := add(0, 1_000_000); err != nil || tr != math.MaxInt64 {
			t.Errorf("add past the top (insert path): %d, %v; want MaxInt64", tr, err)
		}
		if c, tr, err := add(-1, 1_000_000); err != nil || tr != math.MaxInt64 || c != 0 {
			t.Errorf("add past the top (update path): %d %d, %v; want 0, MaxInt64", c, tr, err)
		}
		if _, _, err := add(0, -1); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("negative usage: %v, want ErrInvalid", err)
		}
		if _, tr, _ := add(0, 0); tr != math.MaxInt64 {
			t.Errorf("after the refusal: %d", tr)
		}
	})
}
