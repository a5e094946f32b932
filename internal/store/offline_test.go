package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

func TestOfflineKeys(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		tn, err := db.CreateTenant(ctx, licensing.Tenant{Name: "Acme"})
		if err != nil {
			t.Fatal(err)
		}
		key := func(id, kind string) licensing.OfflineKey {
			return licensing.OfflineKey{ID: id, TenantID: tn.ID, Kind: kind, PublicKey: "pub-" + id, SealedPrivate: "sealed-" + id}
		}

		// Racing processes all get the one stored key.
		var wg sync.WaitGroup
		got := make([]licensing.OfflineKey, 8)
		for i := range got {
			wg.Go(func() {
				k, err := db.EnsureOfflineKey(ctx, key("k"+string(rune('0'+i)), licensing.OfflineKeyX25519))
				if err != nil {
					t.Error(err)
				}
				got[i] = k
			})
		}
		wg.Wait()
		for _, k := range got[1:] {
			if k.ID != got[0].ID || k.SealedPrivate != "sealed-"+k.ID || k.TenantID != tn.ID {
				t.Errorf("EnsureOfflineKey gave %+v and %+v", got[0], k)
			}
		}
		if _, err := db.EnsureOfflineKey(ctx, key("sig", licensing.OfflineKeyEd25519)); err != nil {
			t.Fatal(err)
		}
		ks, err := db.OfflineKeys(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != 2 || ks[0].Kind != licensing.OfflineKeyEd25519 || ks[1].ID != got[0].ID {
			t.Errorf("OfflineKeys = %+v", ks)
		}

		// Retired: still found by ID, no longer active; a new one is made.
		if err := db.RetireOfflineKey(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := db.RetireOfflineKey(ctx, got[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("retire twice: %v, want ErrNotFound", err)
		}
		old, err := db.GetOfflineKey(ctx, got[0].ID)
		if err != nil || old.RetiredAt.IsZero() {
			t.Errorf("retired key: %+v, %v", old, err)
		}
		nk, err := db.EnsureOfflineKey(ctx, key("k-new", licensing.OfflineKeyX25519))
		if err != nil || nk.ID != "k-new" {
			t.Errorf("key after retirement: %+v, %v", nk, err)
		}

		if _, err := db.GetOfflineKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetOfflineKey(unknown) = %v, want ErrNotFound", err)
		}
		bad := key("b", "rsa")
		if _, err := db.EnsureOfflineKey(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("kind rsa: %v, want ErrInvalid", err)
		}
		bad = key("b", licensing.OfflineKeyX25519)
		bad.TenantID = "no-such-tenant"
		if _, err := db.EnsureOfflineKey(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown tenant: %v, want ErrNotFound", err)
		}
	})
}

func TestOfflineRequestsAndActivations(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		tn, _ := db.CreateTenant(ctx, licensing.Tenant{Name: "Acme"})
		p, _ := db.CreateProduct(ctx, licensing.Product{Name: "App"})
		e, err := db.CreateEntitlement(ctx, licensing.StoredEntitlement{TenantID: tn.ID, ProductID: p.ID, Seats: 1, Lease: time.Hour, CodeHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		tx := func(fn func(licensing.Tx) error) error { return db.InLicensingTx(ctx, fn) }

		// A request ID is used once; a rolled-back use does not count.
		errRollback := errors.New("rollback")
		err = tx(func(tx licensing.Tx) error {
			if err := tx.UseOfflineRequest(ctx, "r1", tn.ID, now); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		if err := tx(func(tx licensing.Tx) error { return tx.UseOfflineRequest(ctx, "r1", tn.ID, now) }); err != nil {
			t.Errorf("use after a rollback: %v", err)
		}
		err = tx(func(tx licensing.Tx) error { return tx.UseOfflineRequest(ctx, "r1", tn.ID, now) })
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("second use: %v, want ErrConflict", err)
		}
		if err := tx(func(tx licensing.Tx) error { return tx.UseOfflineRequest(ctx, "r2", tn.ID, now.Add(time.Hour)) }); err != nil {
			t.Fatal(err)
		}
		n, err := db.PruneOfflineRequests(ctx, now.Add(time.Minute))
		if err != nil || n != 1 {
			t.Errorf("prune = %d, %v; want 1", n, err)
		}
		if err := tx(func(tx licensing.Tx) error { return tx.UseOfflineRequest(ctx, "r1", tn.ID, now) }); err != nil {
			t.Errorf("use after prune: %v", err)
		}

		// The offline mark of an activation.
		err = tx(func(tx licensing.Tx) error {
			a, err := tx.InsertActivation(ctx, licensing.StoredActivation{EntitlementID: e.ID, SeatID: "s1", TokenJTI: "j", NonceHash: "n",
				LeaseExpiresAt: now.Add(time.Hour), Status: licensing.StatusActive, CreatedAt: now, RefreshedAt: now})
			if err != nil {
				return err
			}
			if _, err := tx.OfflineActivation(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("mark before put: %v, want ErrNotFound", err)
			}
			if err := tx.PutOfflineActivation(ctx, licensing.OfflineActivation{ActivationID: a.ID, SecretHash: "s1", ClientKeyHash: "c1", CreatedAt: now}); err != nil {
				return err
			}
			if err := tx.PutOfflineActivation(ctx, licensing.OfflineActivation{ActivationID: a.ID, SecretHash: "s2", ClientKeyHash: "c2", CreatedAt: now}); err != nil {
				return err
			}
			got, err := tx.OfflineActivation(ctx, a.ID)
			if err != nil {
				return err
			}
			if got.SecretHash != "s2" || got.ClientKeyHash != "c2" || !got.CreatedAt.Equal(now) {
				t.Errorf("offline activation %+v", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = tx(func(tx licensing.Tx) error {
			return tx.PutOfflineActivation(ctx, licensing.OfflineActivation{ActivationID: "nope", SecretHash: "s", ClientKeyHash: "c", CreatedAt: now})
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("mark of an unknown activation: %v, want ErrNotFound", err)
		}
	})
}
