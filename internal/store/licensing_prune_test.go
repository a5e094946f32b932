package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// sqlTime is a time as the dialect stores it.
func sqlTime(db *store.DB, t time.Time) any {
	if db.Dialect() == store.Postgres {
		return t.UTC()
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// bulkInsert runs the insert n times in one transaction, with args(i).
func bulkInsert(t *testing.T, db *store.DB, q string, n int, args func(i int) []any) {
	t.Helper()
	if db.Dialect() == store.Postgres {
		var b strings.Builder
		k := 0
		for _, r := range q {
			if r == '?' {
				k++
				fmt.Fprintf(&b, "$%d", k)
				continue
			}
			b.WriteRune(r)
		}
		q = b.String()
	}
	tx, err := db.SQL().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := st.ExecContext(t.Context(), args(i)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *store.DB, q string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRowContext(t.Context(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPruneInBatches: rows past their retention go, however many (more
// than a batch), and live ones stay.
func TestPruneInBatches(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		now := time.Now().UTC().Truncate(time.Second)
		old, live := now.Add(-48*time.Hour), now.Add(-time.Hour)
		cut := now.Add(-24 * time.Hour)
		expired := 2*store.PruneBatch + 7 // three batches

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
		act := licensing.StoredActivation{ID: "act-1", EntitlementID: e.ID, SeatID: "s", TokenJTI: "j", NonceHash: "n",
			LeaseExpiresAt: now.Add(time.Hour), Status: licensing.StatusActive, CreatedAt: now, RefreshedAt: now}
		if err := db.InLicensingTx(ctx, func(tx licensing.Tx) error { _, err := tx.InsertActivation(ctx, act); return err }); err != nil {
			t.Fatal(err)
		}

		bulkInsert(t, db, "INSERT INTO licensing_idempotency (activation_id, key_hash, request_hash, prev_nonce_hash, status, sealed, created_at) VALUES (?, ?, 'r', 'p', 200, 's', ?)",
			expired+3, func(i int) []any {
				at := old
				if i >= expired {
					at = live
				}
				return []any{"act-1", fmt.Sprintf("k%d", i), sqlTime(db, at)}
			})
		bulkInsert(t, db, "INSERT INTO oauth_revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?, 'c', ?, ?)",
			expired+3, func(i int) []any {
				at := old
				if i >= expired {
					at = now.Add(time.Hour)
				}
				return []any{fmt.Sprintf("jti-%d", i), sqlTime(db, at), sqlTime(db, old)}
			})
		bulkInsert(t, db, "INSERT INTO idempotency_keys (client_id, idem_key, request_hash, status, created_at, expires_at) VALUES ('c', ?, 'r', 200, ?, ?)",
			expired+3, func(i int) []any {
				at := old
				if i >= expired {
					at = now.Add(time.Hour)
				}
				return []any{fmt.Sprintf("key-%d", i), sqlTime(db, old), sqlTime(db, at)}
			})

		for _, c := range []struct {
			name  string
			prune func() (int64, error)
			table string
		}{
			{"stored answers", func() (int64, error) { return db.PruneIdempotentAnswers(ctx, cut) }, "licensing_idempotency"},
			{"revoked tokens", func() (int64, error) { return db.PruneOAuthRevokedTokens(ctx, now) }, "oauth_revoked_tokens"},
			{"idempotency keys", func() (int64, error) { return db.PruneIdempotencyKeys(ctx, now) }, "idempotency_keys"},
		} {
			n, err := c.prune()
			if err != nil || n != int64(expired) {
				t.Errorf("%s: pruned %d, %v; want %d", c.name, n, err, expired)
			}
			if left := count(t, db, "SELECT count(*) FROM "+c.table); left != 3 {
				t.Errorf("%s: %d rows left, want the 3 live ones", c.name, left)
			}
			if n, err := c.prune(); err != nil || n != 0 {
				t.Errorf("%s: a second prune deleted %d, %v", c.name, n, err)
			}
		}

		// A cancelled context stops between batches, and says so.
		bulkInsert(t, db, "INSERT INTO oauth_revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?, 'c', ?, ?)",
			10, func(i int) []any { return []any{fmt.Sprintf("more-%d", i), sqlTime(db, old), sqlTime(db, old)} })
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := db.PruneOAuthRevokedTokens(cctx, now); err == nil {
			t.Errorf("prune with a cancelled context: no error")
		}
	})
}

// TestSweepIndexes: the indexes the sweeps and the lease and expiry
// queries need exist (migration 0012), and SQLite's planner uses them.
func TestSweepIndexes(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		db := storetest.Open(t, dialect)
		want := map[string]string{
			"licensing_activations_status_lease":   "licensing_activations",
			"licensing_entitlements_status_expiry": "licensing_entitlements",
			"license_webhook_events_created_at":    "license_webhook_events",
			"license_webhook_deliveries_event":     "license_webhook_deliveries",
			"licensing_idempotency_created_at":     "licensing_idempotency",
			"oauth_revoked_tokens_expires_at":      "oauth_revoked_tokens",
		}
		q := "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?"
		if dialect == store.Postgres {
			q = "SELECT tablename FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
		}
		for name, table := range want {
			var got string
			if err := db.SQL().QueryRowContext(t.Context(), q, name).Scan(&got); err != nil || got != table {
				t.Errorf("index %s: on %q, %v; want on %s", name, got, err, table)
			}
		}
		if dialect != store.SQLite {
			return
		}
		for query, index := range map[string]string{
			"SELECT entitlement_id FROM licensing_activations WHERE status = 'active' AND lease_expires_at <= 'x'":     "licensing_activations_status_lease",
			"SELECT id FROM licensing_entitlements WHERE status = 'active' AND expires_at > 'a' AND expires_at <= 'b'": "licensing_entitlements_status_expiry",
			"SELECT id FROM license_webhook_events WHERE created_at < 'x'":                                             "license_webhook_events_created_at",
			"SELECT 1 FROM license_webhook_deliveries d WHERE d.event_id = 'e' AND d.status = 'pending'":               "license_webhook_deliveries_event",
		} {
			rows, err := db.SQL().QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			if p := strings.Join(plan, "; "); !strings.Contains(p, index) {
				t.Errorf("%s: plan %q does not use %s", query, p, index)
			}
		}
	})
}
