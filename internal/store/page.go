package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// Limits of Page.Limit.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Page asks for one page of a list that grows at its end (oldest first):
// at most Limit items (0 means DefaultPageLimit; more than MaxPageLimit is
// ErrInvalid) after the item that Cursor, returned with the previous page,
// points at. The cursor is opaque to clients.
type Page struct {
	Cursor string
	Limit  int
}

// listPage reads one page of table ordered by (created_at, id), keyset
// paginated: an item created while a client pages is on a later page,
// none is seen twice, and a page costs one indexed range read whatever
// its depth. where (without "WHERE") and args filter the list.
func listPage[T any](ctx context.Context, d *DB, what, table, cols string, scan func(rowScanner) (T, error), id func(T) string, p Page, where string, args ...any) ([]T, string, error) {
	limit := p.Limit
	switch {
	case limit == 0:
		limit = DefaultPageLimit
	case limit < 0 || limit > MaxPageLimit:
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalid, p.Limit, MaxPageLimit)
	}
	var conds []string
	if where != "" {
		conds = append(conds, where)
	}
	if p.Cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(after) == 0 || len(after) > 200 || !utf8.Valid(after) {
			return nil, "", fmt.Errorf("%w: cursor %q: not a cursor of this list; start again without one", ErrInvalid, p.Cursor)
		}
		var n int
		if err := d.queryRow(ctx, "SELECT count(*) FROM "+table+" WHERE id = ?", string(after)).Scan(&n); err != nil {
			return nil, "", fmt.Errorf("store: list %s: %w", what, err)
		}
		if n == 0 {
			return nil, "", fmt.Errorf("%w: cursor %q: not a cursor of this list; start again without one", ErrInvalid, p.Cursor)
		}
		conds = append(conds, "(created_at, id) > (SELECT created_at, id FROM "+table+" WHERE id = ?)")
		args = append(args, string(after))
	}
	q := "SELECT " + cols + " FROM " + table
	for i, c := range conds {
		if i == 0 {
			q += " WHERE " + c
		} else {
			q += " AND " + c
		}
	}
	q += " ORDER BY created_at, id LIMIT ?"
	args = append(args, limit+1)
	items, err := listRows(ctx, d, what, scan, q, args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeCursor(id(items[limit-1]))
	}
	return items, next, nil
}
