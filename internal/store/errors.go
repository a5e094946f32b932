package store

import (
	"errors"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/oauth"
	"github.com/vigil-sec/vigil/reports"
)

// Sentinel errors. Callers test them with errors.Is and map them to HTTP
// statuses or exit codes. Their own messages are safe to show to users; the
// full text of a wrapped error is for logs only, as it may hold SQL.
//
// Each is also the like sentinel of the domains whose Store this package
// implements (errors.Is(err, oauth.ErrNotFound), errors.Is(err,
// licensing.ErrNotFound), errors.Is(err, ci.ErrNotFound) and
// errors.Is(err, reports.ErrNotFound) hold for an ErrNotFound), so a
// domain tests the errors of its store without importing this package.
var (
	// ErrNotFound: the row (or blob) does not exist.
	ErrNotFound error = &sentinel{"not found", []error{oauth.ErrNotFound, licensing.ErrNotFound, ci.ErrNotFound, reports.ErrNotFound}}
	// ErrConflict: the write contradicts the stored state (a duplicate
	// name, a status transition that is not allowed).
	ErrConflict error = &sentinel{"conflict", []error{licensing.ErrConflict, ci.ErrConflict, reports.ErrConflict}}
	// ErrInvalid: the input is malformed (an empty name, a bad digest,
	// a bad cursor).
	ErrInvalid error = &sentinel{"invalid input", []error{licensing.ErrInvalid, ci.ErrInvalid, reports.ErrInvalid}}
)

// sentinel is an error that is also each of the domain errors in is.
type sentinel struct {
	msg string
	is  []error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is one of the domain errors e stands for.
func (e *sentinel) Is(target error) bool { return slices.Contains(e.is, target) }

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
