package store

import (
	"context"
	"fmt"
)

// Pruning deletes in batches: each batch is one short statement, so that
// a table grown to millions of rows (stored answers at thousands of
// refreshes a second) never holds SQLite's single writer, or PostgreSQL
// row locks and WAL, for long. One call deletes at most PruneMaxBatches
// batches; the periodic sweep that calls it again takes the rest.
const (
	PruneBatch      = 2000
	PruneMaxBatches = 250
)

// pruneInBatches deletes the rows of table matching where, keyed by the
// key columns, PruneBatch at a time, until fewer than a batch matched,
// PruneMaxBatches batches were deleted, or ctx is done. It returns how
// many rows it deleted.
func (d *DB) pruneInBatches(ctx context.Context, what, table, keyCols, where string, args ...any) (int64, error) {
	q := "DELETE FROM " + table + " WHERE (" + keyCols + ") IN (SELECT " + keyCols + " FROM " + table + " WHERE " + where + " LIMIT ?)"
	args = append(args, PruneBatch)
	var total int64
	for range PruneMaxBatches {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("store: prune %s: %w", what, err)
		}
		res, err := d.exec(ctx, q, args...)
		if err != nil {
			return total, fmt.Errorf("store: prune %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("store: prune %s: %w", what, err)
		}
		total += n
		if n < PruneBatch {
			break
		}
	}
	return total, nil
}
