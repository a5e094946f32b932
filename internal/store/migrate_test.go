package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, err := store.Open(ctx, storetest.DSN(t, dialect))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()

		applied, known, err := db.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if applied != 0 || known < 1 {
			t.Fatalf("empty database: SchemaVersion() = %d, %d; want 0, >= 1", applied, known)
		}
		for i := range 2 { // the second run finds nothing to do
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate #%d: %v", i+1, err)
			}
			applied, known, err = db.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if applied != known {
				t.Fatalf("after Migrate #%d: applied version %d, want %d", i+1, applied, known)
			}
		}
		// The schema is usable.
		if _, err := db.CreateProject(ctx, ci.Project{Name: "p"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMigrateConcurrent starts several "processes" (separate DB handles)
// on one empty database at once: none may fail.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		dsn := storetest.DSN(t, dialect)
		const n = 4
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			db, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			wg.Go(func() { errs[i] = db.Migrate(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate in process %d: %v", i, err)
			}
		}

		db := storetest.OpenDSN(t, dsn)
		applied, known, err := db.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if applied != known {
			t.Fatalf("applied version %d, want %d", applied, known)
		}
	})
}

func TestOpenDSN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, dsn := range []string{dir + "/a.db", "sqlite:" + dir + "/b.db", "sqlite://" + dir + "/c.db"} {
		db, err := store.Open(ctx, dsn, store.WithMigrate())
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if got := db.Dialect(); got != store.SQLite {
			t.Errorf("Open(%q).Dialect() = %q, want %q", dsn, got, store.SQLite)
		}
		db.Close()
	}
	if _, err := store.Open(ctx, "postgres://%zz"); err == nil {
		t.Error("Open of a malformed postgres DSN succeeded")
	}
}
