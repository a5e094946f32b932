package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names the SQL database behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DefaultPath is the SQLite file Open uses for an empty DSN.
const DefaultPath = "vigil-data/vigil.db"

// sqliteBusyTimeout is how long a SQLite connection waits for another
// process's write lock before it gives up with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// DB is the database of one Vigil installation: a SQLite file or a
// PostgreSQL database, with the same schema and the same API on both.
type DB struct {
	dialect Dialect
	// db is the connection pool for writes (and, on PostgreSQL, for reads).
	// On SQLite it holds a single connection, so writers queue in Go
	// instead of failing with SQLITE_BUSY.
	db *sql.DB
	// read is a pool of read-only connections on SQLite (WAL lets readers
	// run beside the writer); on PostgreSQL it is db.
	read *sql.DB
	pool *pgxpool.Pool // nil on SQLite
	log  *slog.Logger
}

// Option configures Open.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	migrate bool
}

// WithLogger sets the logger for the store's own messages (migrations).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithMigrate makes Open apply the store's pending migrations before it
// returns. It does not migrate the job queue's tables (see package jobs).
func WithMigrate() Option {
	return func(o *options) { o.migrate = true }
}

// Open opens the database named by dsn:
//
//   - "" opens the SQLite file DefaultPath;
//   - "postgres://…" or "postgresql://…" opens PostgreSQL through pgx;
//   - "sqlite:PATH" or any other string opens the SQLite file PATH,
//     creating it and its directory when missing.
//
// Open does not migrate unless WithMigrate is given.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	var (
		d   *DB
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		d, err = openPostgres(ctx, dsn)
	} else {
		d, err = openSQLite(ctx, sqlitePath(dsn))
	}
	if err != nil {
		return nil, err
	}
	d.log = o.logger
	if o.migrate {
		if err := d.Migrate(ctx); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// sqlitePath returns the file path named by a SQLite DSN.
func sqlitePath(dsn string) string {
	p := strings.TrimPrefix(dsn, "sqlite:")
	if strings.HasPrefix(p, "//") { // sqlite:///abs/path
		p = p[2:]
	}
	if p == "" {
		p = DefaultPath
	}
	return p
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: sqlite path %q: must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create database directory: %w", err)
		}
	}
	params := url.Values{}
	params.Add("_pragma", "busy_timeout("+strconv.Itoa(int(sqliteBusyTimeout.Milliseconds()))+")")
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous(NORMAL)")
	// Write transactions take the write lock when they begin, so that a
	// transaction that reads then writes never fails with SQLITE_BUSY
	// against another process.
	params.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}

	params = url.Values{}
	params.Add("_pragma", "busy_timeout("+strconv.Itoa(int(sqliteBusyTimeout.Milliseconds()))+")")
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &DB{dialect: SQLite, db: w, read: r}, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: do not repeat it.
		return nil, errors.New("store: invalid postgres dsn")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (4 on small machines) is shared with the job
		// queue, whose listener holds one connection for good.
		cfg.MaxConns = int32(max(16, 4*runtime.NumCPU())) // #nosec G115 -- CPU counts are far below 2^31/4
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to postgres %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	return &DB{dialect: Postgres, db: db, read: db, pool: pool}, nil
}

// Dialect reports which database the DB talks to.
func (d *DB) Dialect() Dialect { return d.dialect }

// SQL returns the database/sql handle for writes. On SQLite it holds a
// single connection: never hold a transaction on it while waiting for
// another query on the same DB.
func (d *DB) SQL() *sql.DB { return d.db }

// Pool returns the pgx pool on PostgreSQL, nil on SQLite.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close closes the connections. Nothing may use the DB afterwards.
func (d *DB) Close() error {
	var errs []error
	if d.read != d.db {
		errs = append(errs, d.read.Close())
	}
	errs = append(errs, d.db.Close())
	if d.pool != nil {
		d.pool.Close()
	}
	return errors.Join(errs...)
}

// rebind rewrites the '?' placeholders of a query for the dialect. Queries
// in this package never hold a literal '?'.
func (d *DB) rebind(q string) string {
	if d.dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (d *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, d.rebind(q), args...)
}

// queryRow reads from the read pool.
func (d *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return d.read.QueryRowContext(ctx, d.rebind(q), args...)
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner = interface{ Scan(...any) error }

// listRows runs a query on the read pool and scans every row; what names
// the list in errors ("store: list <what>: …").
func listRows[T any](ctx context.Context, d *DB, what string, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := d.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list %s: %w", what, err)
	}
	return out, nil
}

// getRow runs a one-row query on the read pool and scans the row; what and
// key name it in errors ("<what> <key>: not found", "store: get <what>
// <key>: …").
func getRow[T any](ctx context.Context, d *DB, what, key string, scan func(rowScanner) (T, error), q string, args ...any) (T, error) {
	v, err := scan(d.queryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, fmt.Errorf("%s %q: %w", what, key, ErrNotFound)
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("store: get %s %q: %w", what, key, err)
	}
	return v, nil
}

// query reads from the read pool.
func (d *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.read.QueryContext(ctx, d.rebind(q), args...)
}

// writeRow runs a statement with RETURNING on the write pool.
func (d *DB) writeRow(ctx context.Context, q string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, d.rebind(q), args...)
}

// timeFormat is how SQLite stores times: RFC 3339 in UTC with a fixed
// number of fractional digits, so that text order is time order.
const timeFormat = "2006-01-02T15:04:05.000000Z"

// now is the current time at the precision both databases keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// timeArg converts t for a query: a TIMESTAMPTZ on PostgreSQL, TEXT on
// SQLite. The zero time is NULL.
func (d *DB) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if d.dialect == Postgres {
		return t
	}
	return t.Format(timeFormat)
}

// timeCol scans a time column of either dialect into a UTC time.Time; NULL
// becomes the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

func (c timeCol) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("store: bad stored time %q: %w", s, err)
	}
	*c.t = t.UTC()
	return nil
}

// nullString is "" for NULL, so that optional text reads as an empty string.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// textCol scans nullable text into a string, NULL as "".
type textCol struct{ s *string }

func (c textCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.s = ""
	case string:
		*c.s = v
	case []byte:
		*c.s = string(v)
	default:
		return fmt.Errorf("store: cannot scan %T into a string", src)
	}
	return nil
}
