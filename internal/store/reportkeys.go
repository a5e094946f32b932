package store

import (
	"context"
	"fmt"

	"github.com/vigil-sec/vigil/reports"
)

// reportKeyPurpose is the purpose of every report_keys row this store
// writes: the keys that sign audit reports.
const reportKeyPurpose = "reports"

const reportKeyCols = "id, public_key, sealed_private, created_at, retired_at"

func scanReportKey(row rowScanner) (reports.StoredKey, error) {
	var k reports.StoredKey
	err := row.Scan(&k.ID, &k.PublicPEM, &k.SealedPrivate, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
	return k, err
}

func checkReportKey(k reports.StoredKey) error {
	if k.ID == "" || k.PublicPEM == "" || k.SealedPrivate == "" || k.CreatedAt.IsZero() {
		return fmt.Errorf("%w: a report key needs an id, a public key, a sealed private key and a time", ErrInvalid)
	}
	return nil
}

// EnsureReportKey returns the current report-signing key, storing k as
// that key first if there is none. Of several processes racing to store
// the first key, one wins and all get its key.
func (d *DB) EnsureReportKey(ctx context.Context, k reports.StoredKey) (reports.StoredKey, error) {
	if err := checkReportKey(k); err != nil {
		return reports.StoredKey{}, err
	}
	// The partial unique index on (purpose) WHERE retired_at IS NULL
	// makes the loser of a race a no-op.
	_, err := d.exec(ctx, `INSERT INTO report_keys (purpose, `+reportKeyCols+`) VALUES (?, ?, ?, ?, ?, NULL)
		ON CONFLICT DO NOTHING`, reportKeyPurpose, k.ID, k.PublicPEM, k.SealedPrivate, d.timeArg(k.CreatedAt))
	if err != nil {
		return reports.StoredKey{}, fmt.Errorf("store: store report key: %w", err)
	}
	// Read on the write pool: on SQLite it has just written.
	got, err := scanReportKey(d.writeRow(ctx, "SELECT "+reportKeyCols+" FROM report_keys WHERE purpose = ? AND retired_at IS NULL", reportKeyPurpose))
	if err != nil {
		return reports.StoredKey{}, fmt.Errorf("store: read report key: %w", err)
	}
	return got, nil
}

// RotateReportKey makes k the current report-signing key in one
// transaction: the current key, if any, is retired and its sealed private
// key erased. A rotation racing with this one (or with the first key)
// commits first; this one then retires that key in turn.
func (d *DB) RotateReportKey(ctx context.Context, k reports.StoredKey) error {
	if err := checkReportKey(k); err != nil {
		return err
	}
	var err error
	for range 3 {
		if err = d.rotateReportKey(ctx, k); !isUniqueViolation(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("store: rotate report key: %w", err)
	}
	return nil
}

func (d *DB) rotateReportKey(ctx context.Context, k reports.StoredKey) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, d.rebind("UPDATE report_keys SET retired_at = ?, sealed_private = '' WHERE purpose = ? AND retired_at IS NULL"),
		d.timeArg(now()), reportKeyPurpose); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO report_keys (purpose, `+reportKeyCols+`) VALUES (?, ?, ?, ?, ?, NULL)`),
		reportKeyPurpose, k.ID, k.PublicPEM, k.SealedPrivate, d.timeArg(k.CreatedAt)); err != nil {
		return err
	}
	return tx.Commit()
}

// ListReportKeys returns every report-signing key, the current one first,
// then the retired ones newest first.
func (d *DB) ListReportKeys(ctx context.Context) ([]reports.StoredKey, error) {
	// On the write pool: a key just made or rotated is seen at once.
	rows, err := d.db.QueryContext(ctx, d.rebind("SELECT "+reportKeyCols+` FROM report_keys WHERE purpose = ?
		ORDER BY CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id`), reportKeyPurpose)
	if err != nil {
		return nil, fmt.Errorf("store: list report keys: %w", err)
	}
	defer rows.Close()
	var out []reports.StoredKey
	for rows.Next() {
		k, err := scanReportKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list report keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list report keys: %w", err)
	}
	return out, nil
}

var _ reports.KeyStore = (*DB)(nil)
