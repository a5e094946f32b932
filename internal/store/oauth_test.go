package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

func TestOAuthClients(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)

		c, err := db.CreateOAuthClient(ctx, oauth.StoredClient{ID: "c1", Name: "ci", SecretHash: "h", Scopes: []string{"scans:read", "gate:read"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateOAuthClient(ctx, oauth.StoredClient{ID: "c1", Name: "again", SecretHash: "h"}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateOAuthClient(same id) = %v, want ErrConflict", err)
		}
		if _, err := db.CreateOAuthClient(ctx, oauth.StoredClient{ID: "c2", Name: "x", SecretHash: "h", Scopes: []string{"a b"}}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateOAuthClient(scope with a space) = %v, want ErrInvalid", err)
		}
		got, err := db.GetOAuthClient(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, c); diff != "" {
			t.Errorf("GetOAuthClient() mismatch (-got +want):\n%s", diff)
		}
		if _, err := db.GetOAuthClient(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetOAuthClient(unknown) = %v, want ErrNotFound", err)
		}

		if err := db.RevokeOAuthClient(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		first, _ := db.GetOAuthClient(ctx, "c1")
		if !first.Revoked() {
			t.Fatal("client not revoked")
		}
		if err := db.RevokeOAuthClient(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		again, _ := db.GetOAuthClient(ctx, "c1")
		if !again.RevokedAt.Equal(first.RevokedAt) {
			t.Errorf("second revocation moved revoked_at from %v to %v", first.RevokedAt, again.RevokedAt)
		}
		if err := db.RevokeOAuthClient(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeOAuthClient(unknown) = %v, want ErrNotFound", err)
		}
		list, err := db.ListOAuthClients(ctx)
		if err != nil || len(list) != 1 || list[0].ID != "c1" {
			t.Errorf("ListOAuthClients() = %v, %v; want [c1]", list, err)
		}
	})
}

func TestOAuthRevokedTokens(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		exp := time.Now().UTC().Add(10 * time.Minute)

		for _, jti := range []string{"old", "new"} {
			e := exp
			if jti == "old" {
				e = exp.Add(-time.Hour)
			}
			for range 2 { // idempotent
				if err := db.RevokeOAuthToken(ctx, oauth.RevokedToken{JTI: jti, ClientID: "c", ExpiresAt: e}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if ok, err := db.OAuthTokenRevoked(ctx, "new"); err != nil || !ok {
			t.Errorf("OAuthTokenRevoked(new) = %v, %v; want true", ok, err)
		}
		if ok, err := db.OAuthTokenRevoked(ctx, "other"); err != nil || ok {
			t.Errorf("OAuthTokenRevoked(other) = %v, %v; want false", ok, err)
		}
		n, err := db.PruneOAuthRevokedTokens(ctx, time.Now())
		if err != nil || n != 1 {
			t.Errorf("PruneOAuthRevokedTokens() = %d, %v; want 1", n, err)
		}
		if ok, _ := db.OAuthTokenRevoked(ctx, "old"); ok {
			t.Error("pruned revocation still present")
		}
	})
}

func TestEnsureOAuthKeyRace(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)

		var wg sync.WaitGroup
		got := make([]oauth.Key, 8)
		for i := range got {
			wg.Go(func() {
				k, err := db.EnsureOAuthKey(ctx, oauth.Key{ID: fmt.Sprint("k", i), Kind: oauth.KeySigning, Material: "pem"})
				if err != nil {
					t.Error(err)
				}
				got[i] = k
			})
		}
		wg.Wait()
		for _, k := range got {
			if k.ID != got[0].ID {
				t.Fatalf("EnsureOAuthKey gave different keys to racing callers: %q and %q", k.ID, got[0].ID)
			}
		}
		keys, err := db.ListOAuthKeys(ctx, oauth.KeySigning)
		if err != nil || len(keys) != 1 {
			t.Errorf("ListOAuthKeys() = %d keys, %v; want 1", len(keys), err)
		}
		if _, err := db.EnsureOAuthKey(ctx, oauth.Key{ID: "p", Kind: "other", Material: "x"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("EnsureOAuthKey(bad kind) = %v, want ErrInvalid", err)
		}
	})
}
