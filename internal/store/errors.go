package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors. Callers test them with errors.Is and map them to HTTP
// statuses or exit codes. Their own messages are safe to show to users; the
// full text of a wrapped error is for logs only, as it may hold SQL.
var (
	// ErrNotFound: the row (or blob) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write contradicts the stored state (a duplicate
	// name, a status transition that is not allowed).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed (an empty name, a bad digest,
	// a bad cursor).
	ErrInvalid = errors.New("invalid input")
)

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// violation on either dialect.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY violation on
// either dialect.
func isForeignKeyViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23503"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
