package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-sec/vigil/licensing"
)

const offlineKeyCols = "id, tenant_id, kind, public_key, sealed_private, created_at, retired_at"

func scanOfflineKey(row rowScanner) (licensing.OfflineKey, error) {
	var k licensing.OfflineKey
	err := row.Scan(&k.ID, &k.TenantID, &k.Kind, &k.PublicKey, &k.SealedPrivate, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
	return k, err
}

// EnsureOfflineKey returns the tenant's active key of k.Kind, storing k as
// that key first if there is none. Of processes racing, one wins and all
// get its key. The tenant must exist (ErrNotFound).
func (d *DB) EnsureOfflineKey(ctx context.Context, k licensing.OfflineKey) (licensing.OfflineKey, error) {
	switch {
	case k.ID == "" || k.TenantID == "" || k.PublicKey == "" || k.SealedPrivate == "":
		return licensing.OfflineKey{}, fmt.Errorf("%w: an offline key needs an id, a tenant, a public and a sealed private key", ErrInvalid)
	case k.Kind != licensing.OfflineKeyX25519 && k.Kind != licensing.OfflineKeyMLKEM768X25519 && k.Kind != licensing.OfflineKeyEd25519:
		return licensing.OfflineKey{}, fmt.Errorf("%w: offline key kind %q", ErrInvalid, k.Kind)
	}
	_, err := d.exec(ctx, "INSERT INTO licensing_offline_keys ("+offlineKeyCols+") VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
		k.ID, k.TenantID, k.Kind, k.PublicKey, k.SealedPrivate, d.timeArg(now()))
	if isForeignKeyViolation(err) {
		return licensing.OfflineKey{}, fmt.Errorf("tenant %q: %w", k.TenantID, ErrNotFound)
	}
	if err != nil {
		return licensing.OfflineKey{}, fmt.Errorf("store: store offline %s key: %w", k.Kind, err)
	}
	got, err := scanOfflineKey(d.writeRow(ctx, "SELECT "+offlineKeyCols+" FROM licensing_offline_keys WHERE tenant_id = ? AND kind = ? AND retired_at IS NULL", k.TenantID, k.Kind))
	if err != nil {
		return licensing.OfflineKey{}, fmt.Errorf("store: read offline %s key: %w", k.Kind, err)
	}
	return got, nil
}

// OfflineKeys returns the tenant's active offline keys, one per kind that
// exists, ordered by kind.
func (d *DB) OfflineKeys(ctx context.Context, tenantID string) ([]licensing.OfflineKey, error) {
	return listRows(ctx, d, "offline keys", scanOfflineKey,
		"SELECT "+offlineKeyCols+" FROM licensing_offline_keys WHERE tenant_id = ? AND retired_at IS NULL ORDER BY kind", tenantID)
}

// GetOfflineKey returns the key with the ID, retired or not, or
// ErrNotFound.
func (d *DB) GetOfflineKey(ctx context.Context, id string) (licensing.OfflineKey, error) {
	return getRow(ctx, d, "offline key", id, scanOfflineKey, "SELECT "+offlineKeyCols+" FROM licensing_offline_keys WHERE id = ?", id)
}

// RetireOfflineKey retires the key: it is no longer handed out, and the
// next EnsureOfflineKey of its tenant and kind stores a new one. Requests
// sealed to it still open.
func (d *DB) RetireOfflineKey(ctx context.Context, id string) error {
	res, err := d.exec(ctx, "UPDATE licensing_offline_keys SET retired_at = ? WHERE id = ? AND retired_at IS NULL", d.timeArg(now()), id)
	if err != nil {
		return fmt.Errorf("store: retire offline key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: retire offline key: %w", err)
	} else if n == 0 {
		return fmt.Errorf("active offline key %q: %w", id, ErrNotFound)
	}
	return nil
}

// UseOfflineRequest records the request ID as used, in the transaction:
// a second use of the same ID is ErrConflict. The record goes away with
// the transaction if it rolls back, so a refused request can be retried.
func (t *LicensingTx) UseOfflineRequest(ctx context.Context, requestID, tenantID string, at time.Time) error {
	if requestID == "" {
		return fmt.Errorf("%w: an offline request needs an id", ErrInvalid)
	}
	_, err := t.exec(ctx, "INSERT INTO licensing_offline_requests (request_id, tenant_id, created_at) VALUES (?, ?, ?)",
		requestID, tenantID, t.d.timeArg(at))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: offline request %q was already used", ErrConflict, requestID)
	}
	if err != nil {
		return fmt.Errorf("store: record offline request: %w", err)
	}
	return nil
}

// PruneOfflineRequests deletes the request IDs recorded before the time
// (older than any request still accepted) and returns how many it deleted.
func (d *DB) PruneOfflineRequests(ctx context.Context, before time.Time) (int64, error) {
	res, err := d.exec(ctx, "DELETE FROM licensing_offline_requests WHERE created_at < ?", d.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune offline requests: %w", err)
	}
	return res.RowsAffected()
}

// PutOfflineActivation marks the activation as offline with the client's
// proof hash and key hash, replacing what an earlier offline activation
// of the same seat stored.
func (t *LicensingTx) PutOfflineActivation(ctx context.Context, a licensing.OfflineActivation) error {
	_, err := t.exec(ctx, `INSERT INTO licensing_offline_activations (activation_id, secret_hash, client_key_hash, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (activation_id) DO UPDATE SET secret_hash = excluded.secret_hash, client_key_hash = excluded.client_key_hash`,
		a.ActivationID, a.SecretHash, a.ClientKeyHash, t.d.timeArg(a.CreatedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("activation %q: %w", a.ActivationID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: store offline activation: %w", err)
	}
	return nil
}

// OfflineActivation returns the offline mark of the activation, or
// ErrNotFound when it was not taken offline.
func (t *LicensingTx) OfflineActivation(ctx context.Context, activationID string) (licensing.OfflineActivation, error) {
	var a licensing.OfflineActivation
	err := t.queryRow(ctx, "SELECT activation_id, secret_hash, client_key_hash, created_at FROM licensing_offline_activations WHERE activation_id = ?", activationID).
		Scan(&a.ActivationID, &a.SecretHash, &a.ClientKeyHash, timeCol{&a.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.OfflineActivation{}, fmt.Errorf("offline activation %q: %w", activationID, ErrNotFound)
	}
	if err != nil {
		return licensing.OfflineActivation{}, fmt.Errorf("store: get offline activation: %w", err)
	}
	return a, nil
}
