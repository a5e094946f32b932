package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// TestSweepPrunes: the periodic sweep of a started server prunes the
// revocations of expired OAuth tokens and the expired idempotency keys of
// the Management API, and keeps the live ones.
func TestSweepPrunes(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, blobs := openStore(t, dialect)
		now := time.Now()
		for jti, exp := range map[string]time.Time{"expired": now.Add(-time.Hour), "live": now.Add(time.Hour)} {
			if err := db.RevokeOAuthToken(ctx, oauth.RevokedToken{JTI: jti, ClientID: "c", ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := db.ClaimIdempotencyKey(ctx, "c", "expired", "r", time.Hour, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, "UPDATE idempotency_keys SET expires_at = created_at WHERE idem_key = 'expired'"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ClaimIdempotencyKey(ctx, "c", "live", "r", time.Hour, time.Minute); err != nil {
			t.Fatal(err)
		}
		key := make([]byte, server.SealKeySize)
		jcfg := jobs.DefaultConfig()
		jcfg.PollInterval = 100 * time.Millisecond
		srv, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key, Jobs: &jcfg, Logger: storetest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(ctx); err != nil { // the sweep runs on start
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop(context.Background()) })
		rows := func(q string) int {
			var n int
			if err := db.SQL().QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		deadline := time.Now().Add(time.Minute)
		for rows("SELECT count(*) FROM oauth_revoked_tokens")+rows("SELECT count(*) FROM idempotency_keys") > 2 {
			if time.Now().After(deadline) {
				t.Fatal("the sweep pruned nothing within a minute")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ok, _ := db.OAuthTokenRevoked(ctx, "live"); !ok {
			t.Errorf("the live revocation was pruned")
		}
		if n := rows("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'live'"); n != 1 {
			t.Errorf("the live idempotency key was pruned")
		}
	})
}
