// Package storetest gives tests a fresh, real database of each dialect:
// a SQLite file in a temporary directory, and a new PostgreSQL database on
// the test server, dropped when the test ends.
//
//	func TestThing(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
//			db := storetest.Open(t, dialect)
//			…
//		})
//	}
//
// The PostgreSQL server is $VIGIL_TEST_POSTGRES, by default
// postgres://postgres@127.0.0.1:5432/test (trust auth). Tests of the
// PostgreSQL dialect are skipped, with a message saying so, only when
// nothing listens there.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-sec/vigil/internal/store"
)

// PostgresEnv names the environment variable holding the DSN of the test
// PostgreSQL server, for a role that may create databases.
const PostgresEnv = "VIGIL_TEST_POSTGRES"

// DefaultPostgres is the test PostgreSQL server used when PostgresEnv is
// not set.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Dialects are the dialects every store test runs on.
var Dialects = []store.Dialect{store.SQLite, store.Postgres}

// Run runs fn as a parallel subtest for each dialect, named for it.
func Run(t *testing.T, fn func(t *testing.T, dialect store.Dialect)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// Open returns a fresh database of the dialect with the store's schema
// migrated, closed when the test ends.
func Open(t testing.TB, dialect store.Dialect) *store.DB {
	t.Helper()
	return OpenDSN(t, DSN(t, dialect))
}

// OpenDSN opens (and migrates) the database at dsn, closing it when the
// test ends. Use it with DSN to open one database twice, as a restarted
// process would.
func OpenDSN(t testing.TB, dsn string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, dsn, store.WithMigrate(), store.WithLogger(Logger(t)))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close test database: %v", err)
		}
	})
	return db
}

// DSN creates a fresh, empty database of the dialect and returns its DSN.
// The database is removed when the test ends. For PostgreSQL it skips the
// test if the server cannot be reached.
func DSN(t testing.TB, dialect store.Dialect) string {
	t.Helper()
	switch dialect {
	case store.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "vigil.db")
	case store.Postgres:
		return postgresDSN(t)
	default:
		t.Fatalf("storetest: unknown dialect %q", dialect)
		return ""
	}
}

var (
	reachOnce sync.Once
	reachErr  error
)

func adminDSN() string {
	if v := os.Getenv(PostgresEnv); v != "" {
		return v
	}
	return DefaultPostgres
}

// reachable dials the test server once per process.
func reachable(dsn string) error {
	reachOnce.Do(func() {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			reachErr = fmt.Errorf("bad %s: %w", PostgresEnv, err)
			return
		}
		addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			reachErr = err
			return
		}
		c.Close()
	})
	return reachErr
}

func postgresDSN(t testing.TB) string {
	t.Helper()
	admin := adminDSN()
	if err := reachable(admin); err != nil {
		t.Skipf("skipping the PostgreSQL variant: server not reachable (%v); start it with "+
			"`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or set %s", err, PostgresEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("storetest: connect to the test PostgreSQL server: %v", err)
	}
	defer conn.Close(ctx)

	name := "vigil_test_" + randomHex(8)
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
		var pgErr *pgconn.PgError
		// 55006: template1 is briefly in use by a concurrent CREATE DATABASE.
		if errors.As(err, &pgErr) && pgErr.Code == "55006" && attempt < 20 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		break
	}
	if err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: %s must be a postgres:// URL: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Logger returns a logger that writes to t.Log at Warn level and above
// (Debug with VIGIL_TEST_LOG=debug), and drops records after the test ends.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if strings.EqualFold(os.Getenv("VIGIL_TEST_LOG"), "debug") {
		level = slog.LevelDebug
	}
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
