package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/vigil-sec/vigil/licensing"
)

// ActiveLicensingKey returns the active key of the kind, or ErrNotFound.
func (d *DB) ActiveLicensingKey(ctx context.Context, kind string) (licensing.Key, error) {
	k, err := scanLicensingKey(d.writeRow(ctx, "SELECT "+licensingKeyCols+" FROM licensing_keys WHERE kind = ? AND retired_at IS NULL", kind))
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.Key{}, fmt.Errorf("licensing %s key: %w", kind, ErrNotFound)
	}
	if err != nil {
		return licensing.Key{}, fmt.Errorf("store: read licensing %s key: %w", kind, err)
	}
	return k, nil
}

// ReplaceLicensingKeyMaterial sets the key's material to material if it
// is still old, and reports whether it did.
func (d *DB) ReplaceLicensingKeyMaterial(ctx context.Context, id, old, material string) (bool, error) {
	ok, err := oneRowChanged(d.exec(ctx, "UPDATE licensing_keys SET material = ? WHERE id = ? AND material = ?", material, id, old))
	if err != nil {
		return false, fmt.Errorf("store: update licensing key %s: %w", id, err)
	}
	return ok, nil
}

// ResealLicensing replaces, in one transaction, the material of the
// licensing key k with material, and every sealed offline private key,
// webhook key and webhook secret with what reseal returns for it. It does
// nothing and returns false when k's material is no longer k.Material
// (another process did it first). An error from reseal rolls everything
// back: the next call starts again from the same state.
func (d *DB) ResealLicensing(ctx context.Context, k licensing.Key, material string, reseal func(licensing.SealedValue) (string, error)) (bool, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	// First: this write takes the lock that makes a racing process wait,
	// then find the material changed and do nothing.
	res, err := tx.ExecContext(ctx, d.rebind("UPDATE licensing_keys SET material = ? WHERE id = ? AND material = ?"), material, k.ID, k.Material)
	if ok, err := oneRowChanged(res, err); err != nil || !ok {
		if err != nil {
			return false, fmt.Errorf("store: reseal licensing key %s: %w", k.ID, err)
		}
		return false, nil
	}

	var values []licensing.SealedValue
	rows, err := tx.QueryContext(ctx, d.rebind("SELECT "+offlineKeyCols+" FROM licensing_offline_keys ORDER BY id"))
	if err != nil {
		return false, fmt.Errorf("store: read offline keys: %w", err)
	}
	for rows.Next() {
		ok, err := scanOfflineKey(rows)
		if err != nil {
			rows.Close()
			return false, fmt.Errorf("store: read offline keys: %w", err)
		}
		values = append(values, licensing.SealedValue{Kind: licensing.SealedOfflineKey, OfflineKey: ok, TenantID: ok.TenantID, Sealed: ok.SealedPrivate})
	}
	if err := closeRows(rows); err != nil {
		return false, fmt.Errorf("store: read offline keys: %w", err)
	}
	if rows, err = tx.QueryContext(ctx, d.rebind("SELECT tenant_id, private_key FROM license_webhook_keys ORDER BY tenant_id")); err != nil {
		return false, fmt.Errorf("store: read webhook keys: %w", err)
	}
	for rows.Next() {
		v := licensing.SealedValue{Kind: licensing.SealedWebhookKey}
		if err := rows.Scan(&v.TenantID, &v.Sealed); err != nil {
			rows.Close()
			return false, fmt.Errorf("store: read webhook keys: %w", err)
		}
		values = append(values, v)
	}
	if err := closeRows(rows); err != nil {
		return false, fmt.Errorf("store: read webhook keys: %w", err)
	}
	if rows, err = tx.QueryContext(ctx, d.rebind("SELECT id, tenant_id, secret FROM license_webhooks WHERE secret <> '' ORDER BY id")); err != nil {
		return false, fmt.Errorf("store: read webhook secrets: %w", err)
	}
	for rows.Next() {
		v := licensing.SealedValue{Kind: licensing.SealedWebhookSecret}
		if err := rows.Scan(&v.WebhookID, &v.TenantID, &v.Sealed); err != nil {
			rows.Close()
			return false, fmt.Errorf("store: read webhook secrets: %w", err)
		}
		values = append(values, v)
	}
	if err := closeRows(rows); err != nil {
		return false, fmt.Errorf("store: read webhook secrets: %w", err)
	}

	for _, v := range values {
		sealed, err := reseal(v)
		if err != nil {
			return false, err
		}
		var q string
		var id string
		switch v.Kind {
		case licensing.SealedOfflineKey:
			q, id = "UPDATE licensing_offline_keys SET sealed_private = ? WHERE id = ? AND sealed_private = ?", v.OfflineKey.ID
		case licensing.SealedWebhookKey:
			q, id = "UPDATE license_webhook_keys SET private_key = ? WHERE tenant_id = ? AND private_key = ?", v.TenantID
		case licensing.SealedWebhookSecret:
			q, id = "UPDATE license_webhooks SET secret = ? WHERE id = ? AND secret = ?", v.WebhookID
		}
		if _, err := tx.ExecContext(ctx, d.rebind(q), sealed, id, v.Sealed); err != nil {
			return false, fmt.Errorf("store: reseal %s %s: %w", v.Kind, id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: commit: %w", err)
	}
	return true, nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// oneRowChanged reports whether the statement changed a row.
func oneRowChanged(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
