package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
)

// migrationFS holds the schema, one directory per dialect, one file per
// version: migrations/<dialect>/NNNN_name.sql. Both dialects must have the
// same versions.
//
//go:embed migrations
var migrationFS embed.FS

// MigrateLockKey is the PostgreSQL advisory lock that serializes schema
// migrations between processes. Other migrators of the same database (the
// job queue's) take it too.
const MigrateLockKey int64 = 0x76_69_67_69_6c_00_00_01 // "vigil" 0 0 1

const schemaTable = "vigil_schema_migrations"

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations of the dialect in order.
func migrations(dialect Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(dialect))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s: name must start with a positive version number", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("store: two migrations with version %d", ms[i].version)
		}
	}
	return ms, nil
}

// Migrate applies the store's pending schema migrations, each in its own
// transaction, recording them in the vigil_schema_migrations table. It is
// idempotent, and on PostgreSQL safe to run from several processes at once:
// each migration runs under an advisory lock and re-checks whether another
// process applied it meanwhile. On SQLite the write lock does the same.
func (d *DB) Migrate(ctx context.Context) error {
	ms, err := migrations(d.dialect)
	if err != nil {
		return err
	}
	for _, m := range ms {
		applied, err := d.applyMigration(ctx, m)
		if err != nil {
			return err
		}
		if applied {
			d.log.InfoContext(ctx, "applied schema migration", slog.Int("version", m.version), slog.String("name", m.name))
		}
	}
	return nil
}

// applyMigration applies m unless it is recorded as applied already.
func (d *DB) applyMigration(ctx context.Context, m migration) (applied bool, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: migration %s: begin: %w", m.name, err)
	}
	defer tx.Rollback()

	if d.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", MigrateLockKey); err != nil {
			return false, fmt.Errorf("store: migration %s: lock: %w", m.name, err)
		}
	}
	if err := d.ensureSchemaTable(ctx, tx); err != nil {
		return false, err
	}
	var n int
	q := d.rebind("SELECT count(*) FROM " + schemaTable + " WHERE version = ?")
	if err := tx.QueryRowContext(ctx, q, m.version).Scan(&n); err != nil {
		return false, fmt.Errorf("store: migration %s: read version: %w", m.name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("store: migration %s: %w", m.name, err)
	}
	q = d.rebind("INSERT INTO " + schemaTable + " (version, name, applied_at) VALUES (?, ?, ?)")
	if _, err := tx.ExecContext(ctx, q, m.version, m.name, d.timeArg(now())); err != nil {
		return false, fmt.Errorf("store: migration %s: record: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: migration %s: commit: %w", m.name, err)
	}
	return true, nil
}

func (d *DB) ensureSchemaTable(ctx context.Context, tx *sql.Tx) error {
	ts := "TEXT"
	if d.dialect == Postgres {
		ts = "TIMESTAMPTZ"
	}
	_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+schemaTable+` (
		version     INTEGER PRIMARY KEY,
		name        TEXT NOT NULL,
		applied_at  `+ts+` NOT NULL
	)`)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", schemaTable, err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration version, 0 for an
// empty database, and the highest version this build knows.
func (d *DB) SchemaVersion(ctx context.Context) (applied, known int, err error) {
	ms, err := migrations(d.dialect)
	if err != nil {
		return 0, 0, err
	}
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
	}
	var exists bool
	switch d.dialect {
	case Postgres:
		err = d.queryRow(ctx, "SELECT to_regclass(?) IS NOT NULL", schemaTable).Scan(&exists)
	default:
		err = d.queryRow(ctx, "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?", schemaTable).Scan(&exists)
	}
	if err != nil {
		return 0, known, fmt.Errorf("store: read schema version: %w", err)
	}
	if !exists {
		return 0, known, nil
	}
	var v sql.NullInt64
	if err := d.queryRow(ctx, "SELECT max(version) FROM "+schemaTable).Scan(&v); err != nil {
		return 0, known, fmt.Errorf("store: read schema version: %w", err)
	}
	return int(v.Int64), known, nil
}
