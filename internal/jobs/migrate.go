package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/vigil-sec/vigil/internal/store"
)

// Migrate applies River's pending migrations (the river_* tables) to db.
// On PostgreSQL it holds the store's migration lock, so processes starting
// at once do not race; on SQLite it runs in one write transaction. logger
// may be nil.
//
// Run it after (*store.DB).Migrate: `vigil migrate` and server start do
// both.
func Migrate(ctx context.Context, db *store.DB, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch db.Dialect() {
	case store.Postgres:
		m, err := rivermigrate.New(riverpgxv5.New(db.Pool()), &rivermigrate.Config{Logger: logger})
		if err != nil {
			return fmt.Errorf("jobs: migrate: %w", err)
		}
		// Some of River's migrations cannot share a transaction (an enum
		// value added, then used), so River applies each in its own, and
		// a session lock on a connection of our own serializes processes.
		// A process that dies releases it with its connection.
		conn, err := db.Pool().Acquire(ctx)
		if err != nil {
			return fmt.Errorf("jobs: migrate: %w", err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", store.MigrateLockKey); err != nil {
			return fmt.Errorf("jobs: migrate: lock: %w", err)
		}
		defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", store.MigrateLockKey)
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("jobs: migrate: %w", err)
		}
	case store.SQLite:
		m, err := rivermigrate.New(riversqlite.New(db.SQL()), &rivermigrate.Config{Logger: logger})
		if err != nil {
			return fmt.Errorf("jobs: migrate: %w", err)
		}
		// An immediate transaction: it holds the write lock throughout.
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("jobs: migrate: %w", err)
		}
		defer tx.Rollback()
		if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("jobs: migrate: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("jobs: migrate: commit: %w", err)
		}
	default:
		return fmt.Errorf("jobs: migrate: unsupported dialect %q", db.Dialect())
	}
	return nil
}
