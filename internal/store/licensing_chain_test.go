package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// TestChainStateAndRotate covers the reads and the compare-and-swap of
// the Licensing API's nonce chain: the joined read, a swap that lost,
// and a swap whose stored answer conflicts, which must write nothing.
func TestChainStateAndRotate(t *testing.T) {
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
		now := time.Now().UTC().Truncate(time.Second)
		act := licensing.StoredActivation{ID: "act-1", EntitlementID: e.ID, SeatID: "s", TokenJTI: "j1", NonceHash: "n1",
			LeaseExpiresAt: now.Add(time.Hour), Status: licensing.StatusActive, CreatedAt: now, RefreshedAt: now}
		if err := db.InLicensingTx(ctx, func(tx licensing.Tx) error { _, err := tx.InsertActivation(ctx, act); return err }); err != nil {
			t.Fatal(err)
		}

		cs, err := db.ChainState(ctx, "act-1", "k1")
		if err != nil {
			t.Fatal(err)
		}
		if cs.Activation.NonceHash != "n1" || cs.Entitlement.ID != e.ID || cs.Entitlement.Lease != time.Hour || cs.TenantStatus != licensing.StatusActive || cs.Answer != nil {
			t.Fatalf("ChainState = %+v", cs)
		}
		if _, err := db.ChainState(ctx, "nope", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ChainState(unknown) = %v, want ErrNotFound", err)
		}

		next := cs.Activation
		next.NonceHash, next.TokenJTI, next.LeaseExpiresAt, next.RefreshedAt = "n2", "j2", now.Add(2*time.Hour), now.Add(time.Minute)
		ans := &licensing.IdempotentAnswer{ActivationID: "act-1", KeyHash: "k1", RequestHash: "r", PrevNonceHash: "n1", Status: 200, Sealed: "sealed", CreatedAt: now}
		if ok, err := db.RotateChain(ctx, next, "stale", ans); ok || err != nil {
			t.Fatalf("RotateChain from a stale hash = %v, %v; want false, nil", ok, err)
		}
		if ok, err := db.RotateChain(ctx, next, "n1", ans); !ok || err != nil {
			t.Fatalf("RotateChain = %v, %v; want true", ok, err)
		}
		cs, err = db.ChainState(ctx, "act-1", "k1")
		if err != nil {
			t.Fatal(err)
		}
		if cs.Activation.NonceHash != "n2" || cs.Activation.TokenJTI != "j2" || !cs.Activation.LeaseExpiresAt.Equal(now.Add(2*time.Hour)) ||
			cs.Answer == nil || cs.Answer.Sealed != "sealed" || cs.Answer.PrevNonceHash != "n1" || cs.Answer.Status != 200 || !cs.Answer.CreatedAt.Equal(now) {
			t.Fatalf("after RotateChain: %+v, answer %+v", cs.Activation, cs.Answer)
		}

		// The same key again: a conflict, and the nonce did not turn.
		again := next
		again.NonceHash = "n3"
		if ok, err := db.RotateChain(ctx, again, "n2", ans); ok || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("RotateChain with a used key = %v, %v; want ErrConflict", ok, err)
		}
		if cs, _ := db.ChainState(ctx, "act-1", ""); cs.Activation.NonceHash != "n2" {
			t.Errorf("a conflicting answer let the nonce turn to %q", cs.Activation.NonceHash)
		}
		// Without a key, and in a transaction, with the row locked.
		if ok, err := db.RotateChain(ctx, again, "n2", nil); !ok || err != nil {
			t.Fatalf("RotateChain without a key = %v, %v", ok, err)
		}
		err = db.InLicensingTx(ctx, func(tx licensing.Tx) error {
			cs, err := tx.ChainState(ctx, "act-1", "k1")
			if err != nil {
				return err
			}
			if cs.Activation.NonceHash != "n3" || cs.Answer == nil {
				t.Errorf("tx ChainState = %+v", cs)
			}
			a := cs.Activation
			a.NonceHash = "n4"
			ok, err := tx.RotateActivation(ctx, a, "n3")
			if !ok {
				t.Errorf("RotateActivation did not swap")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
