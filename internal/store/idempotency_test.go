package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		const ttl, stale = time.Hour, time.Minute

		rec, claimed, err := db.ClaimIdempotencyKey(ctx, "client-a", "key-1", "hash-1", ttl, stale)
		if err != nil || !claimed {
			t.Fatalf("first claim: claimed %v, err %v; want claimed", claimed, err)
		}
		if rec.ExpiresAt.Sub(rec.CreatedAt) != ttl {
			t.Errorf("expiry %s after creation, want %s", rec.ExpiresAt.Sub(rec.CreatedAt), ttl)
		}

		// A second claim while the first runs sees it in progress.
		rec, claimed, err = db.ClaimIdempotencyKey(ctx, "client-a", "key-1", "hash-1", ttl, stale)
		if err != nil || claimed || !rec.InProgress() || rec.RequestHash != "hash-1" {
			t.Fatalf("claim while in progress: %+v, claimed %v, err %v; want the key in progress", rec, claimed, err)
		}

		// The same key of another client is another key.
		if _, claimed, err := db.ClaimIdempotencyKey(ctx, "client-b", "key-1", "hash-1", ttl, stale); err != nil || !claimed {
			t.Fatalf("claim by another client: claimed %v, err %v; want claimed", claimed, err)
		}

		// Completing stores the answer; later claims return it.
		if err := db.CompleteIdempotencyKey(ctx, "client-a", "key-1", "hash-other", 201, "application/json", "/x", []byte(`{}`)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("complete for another request hash: err = %v, want ErrConflict", err)
		}
		body := []byte(`{"id":"p1"}`)
		if err := db.CompleteIdempotencyKey(ctx, "client-a", "key-1", "hash-1", 201, "application/json", "/api/v1/projects/p1", body); err != nil {
			t.Fatal(err)
		}
		rec, claimed, err = db.ClaimIdempotencyKey(ctx, "client-a", "key-1", "hash-2", ttl, stale)
		if err != nil || claimed {
			t.Fatalf("claim of a completed key: claimed %v, err %v", claimed, err)
		}
		if rec.Status != 201 || rec.ContentType != "application/json" || rec.Location != "/api/v1/projects/p1" || string(rec.Body) != string(body) || rec.RequestHash != "hash-1" {
			t.Errorf("stored answer = %+v, want 201 with the body and the first request's hash", rec)
		}
		if err := db.CompleteIdempotencyKey(ctx, "client-a", "key-1", "hash-1", 200, "", "", nil); !errors.Is(err, store.ErrConflict) {
			t.Errorf("completing twice: err = %v, want ErrConflict", err)
		}

		// Releasing an in-progress key lets the request run again;
		// releasing a completed one does nothing.
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "client-a", "key-2", "hash-1", ttl, stale); !claimed {
			t.Fatal("key-2 not claimed")
		}
		if err := db.ReleaseIdempotencyKey(ctx, "client-a", "key-2", "hash-1"); err != nil {
			t.Fatal(err)
		}
		if _, claimed, err := db.ClaimIdempotencyKey(ctx, "client-a", "key-2", "hash-1", ttl, stale); err != nil || !claimed {
			t.Fatalf("claim after release: claimed %v, err %v; want claimed", claimed, err)
		}
		if err := db.ReleaseIdempotencyKey(ctx, "client-a", "key-1", "hash-1"); err != nil {
			t.Fatal(err)
		}
		if rec, _, _ := db.ClaimIdempotencyKey(ctx, "client-a", "key-1", "hash-1", ttl, stale); rec.Status != 201 {
			t.Errorf("a released completed key lost its answer: %+v", rec)
		}

		// Expired keys are claimed anew and pruned; so are keys left in
		// progress for longer than the stale time.
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "client-a", "short", "hash-1", time.Millisecond, stale); !claimed {
			t.Fatal("short not claimed")
		}
		if err := db.CompleteIdempotencyKey(ctx, "client-a", "short", "hash-1", 200, "", "", nil); err != nil {
			t.Fatal(err)
		}
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "client-a", "stuck", "hash-1", ttl, stale); !claimed {
			t.Fatal("stuck not claimed")
		}
		time.Sleep(5 * time.Millisecond)
		if _, claimed, err := db.ClaimIdempotencyKey(ctx, "client-a", "short", "hash-9", ttl, stale); err != nil || !claimed {
			t.Errorf("claim of an expired key: claimed %v, err %v; want claimed", claimed, err)
		}
		if _, claimed, err := db.ClaimIdempotencyKey(ctx, "client-a", "stuck", "hash-9", ttl, time.Millisecond); err != nil || !claimed {
			t.Errorf("claim of a stale in-progress key: claimed %v, err %v; want claimed", claimed, err)
		}
		if _, claimed, _ := db.ClaimIdempotencyKey(ctx, "client-a", "old", "hash-1", time.Millisecond, stale); !claimed {
			t.Fatal("old not claimed")
		}
		time.Sleep(5 * time.Millisecond)
		n, err := db.PruneIdempotencyKeys(ctx, time.Now())
		if err != nil || n != 1 {
			t.Errorf("PruneIdempotencyKeys() = %d, %v; want 1 (the key \"old\")", n, err)
		}
	})
}

// TestIdempotencyKeyRace claims one key from many goroutines at once: on
// both databases exactly one claim wins.
func TestIdempotencyKeyRace(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		const n = 20
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
			errs []error
		)
		for i := range n {
			wg.Go(func() {
				_, claimed, err := db.ClaimIdempotencyKey(ctx, "client", "race", "hash", time.Hour, time.Minute)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("claim %d: %w", i, err))
				}
				if claimed {
					wins++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		if wins != 1 {
			t.Errorf("%d of %d concurrent claims won, want exactly 1", wins, n)
		}
	})
}
