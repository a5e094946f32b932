package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/licensing"
)

// The licensing tables: *DB implements licensing.Store and *LicensingTx
// licensing.Tx, with package licensing's types.
var (
	_ licensing.Store = (*DB)(nil)
	_ licensing.Tx    = (*LicensingTx)(nil)
)

const tenantCols = "id, name, status, created_at"

func scanTenant(row rowScanner) (licensing.Tenant, error) {
	var t licensing.Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Status, timeCol{&t.CreatedAt})
	return t, err
}

// CreateTenant stores a new tenant, active, with a new ID unless t.ID is
// set. The name must not be empty (ErrInvalid).
func (d *DB) CreateTenant(ctx context.Context, t licensing.Tenant) (licensing.Tenant, error) {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		return licensing.Tenant{}, fmt.Errorf("%w: tenant name is empty", ErrInvalid)
	}
	if t.ID == "" {
		t.ID = newID()
	}
	t.Status, t.CreatedAt = licensing.StatusActive, now()
	_, err := d.exec(ctx, "INSERT INTO licensing_tenants ("+tenantCols+") VALUES (?, ?, ?, ?)",
		t.ID, t.Name, t.Status, d.timeArg(t.CreatedAt))
	if isUniqueViolation(err) {
		return licensing.Tenant{}, fmt.Errorf("%w: a tenant with id %q exists", ErrConflict, t.ID)
	}
	if err != nil {
		return licensing.Tenant{}, fmt.Errorf("store: create tenant %q: %w", t.Name, err)
	}
	return t, nil
}

// GetTenant returns the tenant or ErrNotFound.
func (d *DB) GetTenant(ctx context.Context, id string) (licensing.Tenant, error) {
	return getRow(ctx, d, "tenant", id, scanTenant, "SELECT "+tenantCols+" FROM licensing_tenants WHERE id = ?", id)
}

// ListTenants returns one page of the tenants, oldest first, and the
// cursor of the next page ("" on the last).
func (d *DB) ListTenants(ctx context.Context, p licensing.Page) ([]licensing.Tenant, string, error) {
	return listPage(ctx, d, "tenants", "licensing_tenants", tenantCols, scanTenant, func(t licensing.Tenant) string { return t.ID }, Page(p), "")
}

// SetTenantStatus sets the tenant's status (licensing.StatusActive,
// licensing.StatusSuspended).
func (d *DB) SetTenantStatus(ctx context.Context, id, status string) error {
	return d.setStatus(ctx, "licensing_tenants", "tenant", id, status)
}

const productCols = "id, name, created_at"

func scanProduct(row rowScanner) (licensing.Product, error) {
	var p licensing.Product
	err := row.Scan(&p.ID, &p.Name, timeCol{&p.CreatedAt})
	return p, err
}

// CreateProduct stores a new product with a new ID unless p.ID is set.
func (d *DB) CreateProduct(ctx context.Context, p licensing.Product) (licensing.Product, error) {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return licensing.Product{}, fmt.Errorf("%w: product name is empty", ErrInvalid)
	}
	if p.ID == "" {
		p.ID = newID()
	}
	p.CreatedAt = now()
	_, err := d.exec(ctx, "INSERT INTO licensing_products ("+productCols+") VALUES (?, ?, ?)", p.ID, p.Name, d.timeArg(p.CreatedAt))
	if isUniqueViolation(err) {
		return licensing.Product{}, fmt.Errorf("%w: a product with id %q exists", ErrConflict, p.ID)
	}
	if err != nil {
		return licensing.Product{}, fmt.Errorf("store: create product %q: %w", p.Name, err)
	}
	return p, nil
}

// GetProduct returns the product or ErrNotFound.
func (d *DB) GetProduct(ctx context.Context, id string) (licensing.Product, error) {
	return getRow(ctx, d, "product", id, scanProduct, "SELECT "+productCols+" FROM licensing_products WHERE id = ?", id)
}

// ListProducts returns one page of the products, oldest first, and the
// cursor of the next page ("" on the last).
func (d *DB) ListProducts(ctx context.Context, p licensing.Page) ([]licensing.Product, string, error) {
	return listPage(ctx, d, "products", "licensing_products", productCols, scanProduct, func(p licensing.Product) string { return p.ID }, Page(p), "")
}

const entitlementCols = "id, tenant_id, product_id, seats, expires_at, lease_seconds, features, status, code_hash, created_at"

func scanEntitlement(row rowScanner) (licensing.StoredEntitlement, error) {
	var (
		e     licensing.StoredEntitlement
		lease int64
	)
	err := row.Scan(&e.ID, &e.TenantID, &e.ProductID, &e.Seats, timeCol{&e.ExpiresAt}, &lease, &e.Features, &e.Status, &e.CodeHash, timeCol{&e.CreatedAt})
	e.Lease = time.Duration(lease) * time.Second
	return e, err
}

// CreateEntitlement stores a new, active entitlement. The tenant and the
// product must exist (ErrNotFound); the code hash must be new (ErrConflict).
func (d *DB) CreateEntitlement(ctx context.Context, e licensing.StoredEntitlement) (licensing.StoredEntitlement, error) {
	switch {
	case e.Seats < 1:
		return licensing.StoredEntitlement{}, fmt.Errorf("%w: an entitlement needs at least one seat", ErrInvalid)
	case e.Lease < time.Second:
		return licensing.StoredEntitlement{}, fmt.Errorf("%w: lease %v: must be at least 1s", ErrInvalid, e.Lease)
	case e.CodeHash == "":
		return licensing.StoredEntitlement{}, fmt.Errorf("%w: an entitlement needs an activation code hash", ErrInvalid)
	}
	if e.Features == "" {
		e.Features = "{}"
	}
	e.ID, e.Status, e.CreatedAt = newID(), licensing.StatusActive, now()
	_, err := d.exec(ctx, "INSERT INTO licensing_entitlements ("+entitlementCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.ID, e.TenantID, e.ProductID, e.Seats, d.timeArg(e.ExpiresAt), int64(e.Lease/time.Second), e.Features, e.Status, e.CodeHash, d.timeArg(e.CreatedAt))
	switch {
	case isForeignKeyViolation(err):
		return licensing.StoredEntitlement{}, fmt.Errorf("tenant %q or product %q: %w", e.TenantID, e.ProductID, ErrNotFound)
	case isUniqueViolation(err):
		return licensing.StoredEntitlement{}, fmt.Errorf("%w: activation code already in use", ErrConflict)
	case err != nil:
		return licensing.StoredEntitlement{}, fmt.Errorf("store: create entitlement: %w", err)
	}
	return e, nil
}

// GetEntitlement returns the entitlement or ErrNotFound.
func (d *DB) GetEntitlement(ctx context.Context, id string) (licensing.StoredEntitlement, error) {
	return getEntitlement(d.queryRow(ctx, "SELECT "+entitlementCols+" FROM licensing_entitlements WHERE id = ?", id), id)
}

// EntitlementByCodeHash returns the entitlement whose activation code has
// the hash, or ErrNotFound. The lookup is an indexed equality.
func (d *DB) EntitlementByCodeHash(ctx context.Context, codeHash string) (licensing.StoredEntitlement, error) {
	return getEntitlement(d.queryRow(ctx, "SELECT "+entitlementCols+" FROM licensing_entitlements WHERE code_hash = ?", codeHash), "by code")
}

func getEntitlement(row *sql.Row, what string) (licensing.StoredEntitlement, error) {
	e, err := scanEntitlement(row)
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.StoredEntitlement{}, fmt.Errorf("entitlement %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return licensing.StoredEntitlement{}, fmt.Errorf("store: get entitlement %s: %w", what, err)
	}
	return e, nil
}

// ListEntitlements returns one page of the tenant's entitlements (of
// every tenant when tenantID is ""), oldest first, and the cursor of the
// next page ("" on the last).
func (d *DB) ListEntitlements(ctx context.Context, tenantID string, p licensing.Page) ([]licensing.StoredEntitlement, string, error) {
	where, args := "", []any(nil)
	if tenantID != "" {
		where, args = "tenant_id = ?", []any{tenantID}
	}
	return listPage(ctx, d, "entitlements", "licensing_entitlements", entitlementCols, scanEntitlement, func(e licensing.StoredEntitlement) string { return e.ID }, Page(p), where, args...)
}

// SetEntitlementStatus sets the entitlement's status
// (licensing.StatusActive, licensing.StatusSuspended).
func (d *DB) SetEntitlementStatus(ctx context.Context, id, status string) error {
	return d.setStatus(ctx, "licensing_entitlements", "entitlement", id, status)
}

func (d *DB) setStatus(ctx context.Context, table, what, id, status string) error {
	if status != licensing.StatusActive && status != licensing.StatusSuspended {
		return fmt.Errorf("%w: %s status %q", ErrInvalid, what, status)
	}
	res, err := d.exec(ctx, "UPDATE "+table+" SET status = ? WHERE id = ?", status, id)
	if err != nil {
		return fmt.Errorf("store: set %s status: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: set %s status: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
	}
	return nil
}

const licensingKeyCols = "id, kind, material, created_at, retired_at"

func scanLicensingKey(row rowScanner) (licensing.Key, error) {
	var k licensing.Key
	err := row.Scan(&k.ID, &k.Kind, &k.Material, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
	return k, err
}

// EnsureLicensingKey returns the active key of k.Kind, storing k as that
// key first if there is none. Of processes racing, one wins and all get its
// key.
func (d *DB) EnsureLicensingKey(ctx context.Context, k licensing.Key) (licensing.Key, error) {
	if k.ID == "" || k.Material == "" {
		return licensing.Key{}, fmt.Errorf("%w: a licensing key needs an id and material", ErrInvalid)
	}
	if k.Kind != licensing.KeySigning && k.Kind != licensing.KeySecret {
		return licensing.Key{}, fmt.Errorf("%w: licensing key kind %q", ErrInvalid, k.Kind)
	}
	_, err := d.exec(ctx, "INSERT INTO licensing_keys ("+licensingKeyCols+") VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
		k.ID, k.Kind, k.Material, d.timeArg(now()))
	if err != nil {
		return licensing.Key{}, fmt.Errorf("store: store licensing %s key: %w", k.Kind, err)
	}
	got, err := scanLicensingKey(d.writeRow(ctx, "SELECT "+licensingKeyCols+" FROM licensing_keys WHERE kind = ? AND retired_at IS NULL", k.Kind))
	if err != nil {
		return licensing.Key{}, fmt.Errorf("store: read licensing %s key: %w", k.Kind, err)
	}
	return got, nil
}

// ListLicensingKeys returns the keys of the kind, retired ones included,
// newest first.
func (d *DB) ListLicensingKeys(ctx context.Context, kind string) ([]licensing.Key, error) {
	return listRows(ctx, d, "licensing keys", scanLicensingKey, "SELECT "+licensingKeyCols+" FROM licensing_keys WHERE kind = ? ORDER BY created_at DESC, id", kind)
}

// LicensingTx is a write transaction over the licensing tables. Its
// methods are the steps of an activation or a Licensing API call that
// must happen together.
type LicensingTx struct {
	d  *DB
	tx *sql.Tx
}

// InLicensingTx runs fn in a write transaction, committed if fn returns
// nil and rolled back otherwise. On SQLite the single writer serialises
// these transactions; on PostgreSQL the rows they lock (LockEntitlement,
// ActivationForUpdate) do.
func (d *DB) InLicensingTx(ctx context.Context, fn func(licensing.Tx) error) error {
	return d.inLicensingTx(ctx, func(t *LicensingTx) error { return fn(t) })
}

// inLicensingTx is InLicensingTx for the store's own methods, which use
// the transaction's queries.
func (d *DB) inLicensingTx(ctx context.Context, fn func(*LicensingTx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(&LicensingTx{d: d, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func (t *LicensingTx) forUpdate() string {
	if t.d.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (t *LicensingTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.rebind(q), args...)
}

func (t *LicensingTx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
}

// LockEntitlement reads the entitlement and, on PostgreSQL, locks its row
// until the transaction ends, so that seat counts and feature usage are
// checked and changed by one transaction at a time.
func (t *LicensingTx) LockEntitlement(ctx context.Context, id string) (licensing.StoredEntitlement, error) {
	return getEntitlement(t.queryRow(ctx, "SELECT "+entitlementCols+" FROM licensing_entitlements WHERE id = ?"+t.forUpdate(), id), id)
}

// Entitlement reads the entitlement inside the transaction without
// locking it.
func (t *LicensingTx) Entitlement(ctx context.Context, id string) (licensing.StoredEntitlement, error) {
	return getEntitlement(t.queryRow(ctx, "SELECT "+entitlementCols+" FROM licensing_entitlements WHERE id = ?", id), id)
}

const activationCols = "id, entitlement_id, seat_id, seat_name, fingerprint, token_jti, nonce_hash, lease_expires_at, status, created_at, refreshed_at, deactivated_at"

func scanActivation(row rowScanner) (licensing.StoredActivation, error) {
	var a licensing.StoredActivation
	err := row.Scan(&a.ID, &a.EntitlementID, &a.SeatID, &a.SeatName, &a.Fingerprint, &a.TokenJTI, &a.NonceHash,
		timeCol{&a.LeaseExpiresAt}, &a.Status, timeCol{&a.CreatedAt}, timeCol{&a.RefreshedAt}, timeCol{&a.DeactivatedAt})
	return a, err
}

func getActivation(row *sql.Row, what string) (licensing.StoredActivation, error) {
	a, err := scanActivation(row)
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.StoredActivation{}, fmt.Errorf("activation %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return licensing.StoredActivation{}, fmt.Errorf("store: get activation %s: %w", what, err)
	}
	return a, nil
}

// ActivationForUpdate reads the activation and, on PostgreSQL, locks its
// row until the transaction ends.
func (t *LicensingTx) ActivationForUpdate(ctx context.Context, id string) (licensing.StoredActivation, error) {
	return getActivation(t.queryRow(ctx, "SELECT "+activationCols+" FROM licensing_activations WHERE id = ?"+t.forUpdate(), id), id)
}

// ExpireLeases marks the entitlement's active activations whose lease
// ended at or before now as expired, which frees their seats.
func (t *LicensingTx) ExpireLeases(ctx context.Context, entitlementID string, now time.Time) error {
	_, err := t.exec(ctx, "UPDATE licensing_activations SET status = ? WHERE entitlement_id = ? AND status = ? AND lease_expires_at <= ?",
		licensing.StatusExpired, entitlementID, licensing.StatusActive, t.d.timeArg(now))
	if err != nil {
		return fmt.Errorf("store: expire leases: %w", err)
	}
	return nil
}

// ActiveSeat returns the active activation of the seat, or ErrNotFound.
func (t *LicensingTx) ActiveSeat(ctx context.Context, entitlementID, seatID string) (licensing.StoredActivation, error) {
	return getActivation(t.queryRow(ctx, "SELECT "+activationCols+" FROM licensing_activations WHERE entitlement_id = ? AND seat_id = ? AND status = ?",
		entitlementID, seatID, licensing.StatusActive), "of seat "+seatID)
}

// CountActiveSeats counts the entitlement's active activations whose lease
// runs after now.
func (t *LicensingTx) CountActiveSeats(ctx context.Context, entitlementID string, now time.Time) (int, error) {
	var n int
	err := t.queryRow(ctx, "SELECT count(*) FROM licensing_activations WHERE entitlement_id = ? AND status = ? AND lease_expires_at > ?",
		entitlementID, licensing.StatusActive, t.d.timeArg(now)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count seats: %w", err)
	}
	return n, nil
}

// InsertActivation stores a new activation, with a new ID unless a.ID is
// set, and returns it.
func (t *LicensingTx) InsertActivation(ctx context.Context, a licensing.StoredActivation) (licensing.StoredActivation, error) {
	if a.ID == "" {
		a.ID = newID()
	}
	_, err := t.exec(ctx, "INSERT INTO licensing_activations ("+activationCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
		a.ID, a.EntitlementID, a.SeatID, a.SeatName, a.Fingerprint, a.TokenJTI, a.NonceHash,
		t.d.timeArg(a.LeaseExpiresAt), a.Status, t.d.timeArg(a.CreatedAt), t.d.timeArg(a.RefreshedAt))
	if isUniqueViolation(err) {
		return licensing.StoredActivation{}, fmt.Errorf("%w: seat %q is active", ErrConflict, a.SeatID)
	}
	if err != nil {
		return licensing.StoredActivation{}, fmt.Errorf("store: insert activation: %w", err)
	}
	return a, nil
}

// UpdateActivation overwrites the activation's seat name, fingerprint,
// token, nonce hash, lease, status and times.
func (t *LicensingTx) UpdateActivation(ctx context.Context, a licensing.StoredActivation) error {
	_, err := t.exec(ctx, `UPDATE licensing_activations SET seat_name = ?, fingerprint = ?, token_jti = ?, nonce_hash = ?,
		lease_expires_at = ?, status = ?, refreshed_at = ?, deactivated_at = ? WHERE id = ?`,
		a.SeatName, a.Fingerprint, a.TokenJTI, a.NonceHash, t.d.timeArg(a.LeaseExpiresAt), a.Status,
		t.d.timeArg(a.RefreshedAt), t.d.timeArg(a.DeactivatedAt), a.ID)
	if err != nil {
		return fmt.Errorf("store: update activation: %w", err)
	}
	return nil
}

// FeatureInUse sums the checkouts of the feature by the entitlement's
// active activations whose lease runs after now.
func (t *LicensingTx) FeatureInUse(ctx context.Context, entitlementID, feature string, now time.Time) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COALESCE(SUM(u.checked_out), 0) FROM licensing_feature_usage u
		JOIN licensing_activations a ON a.id = u.activation_id
		WHERE a.entitlement_id = ? AND a.status = ? AND a.lease_expires_at > ? AND u.feature = ?`,
		entitlementID, licensing.StatusActive, t.d.timeArg(now), feature).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: feature usage: %w", err)
	}
	return n, nil
}

// AddFeatureUsage adds checkedOut to the activation's checkouts of the
// feature and tracked (not negative: ErrInvalid) to its tracked usage,
// and returns the new values. The tracked total saturates at
// math.MaxInt64 instead of overflowing (an error on PostgreSQL, a silent
// float on SQLite). Callers check first that checkouts do not go below
// zero (the CHECK constraint would fail the transaction).
func (t *LicensingTx) AddFeatureUsage(ctx context.Context, activationID, feature string, checkedOut int, tracked int64) (int, int64, error) {
	var (
		c  int
		tr int64
	)
	if tracked < 0 {
		return 0, 0, fmt.Errorf("%w: tracked usage %d is negative", ErrInvalid, tracked)
	}
	if checkedOut < 0 { // an insert's row would fail the CHECK before the conflict
		err := t.queryRow(ctx, `UPDATE licensing_feature_usage SET checked_out = checked_out + ?,
			tracked = CASE WHEN tracked > `+maxTracked+` - ? THEN `+maxTracked+` ELSE tracked + ? END
			WHERE activation_id = ? AND feature = ? RETURNING checked_out, tracked`, checkedOut, tracked, tracked, activationID, feature).Scan(&c, &tr)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, 0, fmt.Errorf("%w: feature %q is not checked out", ErrConflict, feature)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("store: feature usage: %w", err)
		}
		return c, tr, nil
	}
	err := t.queryRow(ctx, `INSERT INTO licensing_feature_usage (activation_id, feature, checked_out, tracked) VALUES (?, ?, ?, ?)
		ON CONFLICT (activation_id, feature) DO UPDATE SET
			checked_out = licensing_feature_usage.checked_out + excluded.checked_out,
			tracked = CASE WHEN licensing_feature_usage.tracked > `+maxTracked+` - excluded.tracked THEN `+maxTracked+`
				ELSE licensing_feature_usage.tracked + excluded.tracked END
		RETURNING checked_out, tracked`, activationID, feature, checkedOut, tracked).Scan(&c, &tr)
	if err != nil {
		return 0, 0, fmt.Errorf("store: feature usage: %w", err)
	}
	return c, tr, nil
}

// maxTracked is math.MaxInt64, where tracked usage saturates.
const maxTracked = "9223372036854775807"

// FeatureUsage returns the activation's checkouts and tracked usage of the
// feature (zero when it never used it).
func (t *LicensingTx) FeatureUsage(ctx context.Context, activationID, feature string) (int, int64, error) {
	var (
		c  int
		tr int64
	)
	err := t.queryRow(ctx, "SELECT checked_out, tracked FROM licensing_feature_usage WHERE activation_id = ? AND feature = ?", activationID, feature).Scan(&c, &tr)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: feature usage: %w", err)
	}
	return c, tr, nil
}

// PutIdempotentAnswer stores the answer; a second one for the same key is
// ErrConflict.
func (t *LicensingTx) PutIdempotentAnswer(ctx context.Context, a licensing.IdempotentAnswer) error {
	_, err := t.exec(ctx, `INSERT INTO licensing_idempotency (activation_id, key_hash, request_hash, prev_nonce_hash, status, sealed, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.ActivationID, a.KeyHash, a.RequestHash, a.PrevNonceHash, a.Status, a.Sealed, t.d.timeArg(a.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: idempotency key already used", ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: store idempotent answer: %w", err)
	}
	return nil
}

// PruneIdempotentAnswers deletes the answers stored before the time, in
// batches (pruneInBatches), and returns how many it deleted.
func (d *DB) PruneIdempotentAnswers(ctx context.Context, before time.Time) (int64, error) {
	return d.pruneInBatches(ctx, "idempotent answers", "licensing_idempotency", "activation_id, key_hash", "created_at < ?", d.timeArg(before))
}

// Tenant reads the tenant inside the transaction, or ErrNotFound.
func (t *LicensingTx) Tenant(ctx context.Context, id string) (licensing.Tenant, error) {
	tn, err := scanTenant(t.queryRow(ctx, "SELECT "+tenantCols+" FROM licensing_tenants WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.Tenant{}, fmt.Errorf("tenant %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return licensing.Tenant{}, fmt.Errorf("store: get tenant %q: %w", id, err)
	}
	return tn, nil
}

// chainStateQuery joins what ChainState reads; the idempotency key hash is
// its first parameter, the activation ID its second.
var chainStateQuery = "SELECT " + prefixCols("a.", activationCols) + ", " + prefixCols("e.", entitlementCols) + `, t.status,
	i.request_hash, i.prev_nonce_hash, i.status, i.sealed, i.created_at
	FROM licensing_activations a
	JOIN licensing_entitlements e ON e.id = a.entitlement_id
	JOIN licensing_tenants t ON t.id = e.tenant_id
	LEFT JOIN licensing_idempotency i ON i.activation_id = a.id AND i.key_hash = ?
	WHERE a.id = ?`

func prefixCols(p, cols string) string { return p + strings.ReplaceAll(cols, ", ", ", "+p) }

// ChainState reads the activation and, on PostgreSQL, locks its row until
// the transaction ends (not the entitlement's: see LockEntitlement), with
// its entitlement, its tenant's status and the answer stored under
// keyHash ("" for none). An unknown activation is ErrNotFound.
func (t *LicensingTx) ChainState(ctx context.Context, activationID, keyHash string) (licensing.ChainState, error) {
	q := chainStateQuery
	if t.d.dialect == Postgres {
		q += " FOR UPDATE OF a"
	}
	return scanChainState(t.queryRow(ctx, q, keyHash, activationID), activationID, keyHash)
}

// ChainState is LicensingTx.ChainState outside a transaction, without a
// lock: for calls whose one write is RotateChain, a compare-and-swap. On
// PostgreSQL it goes to the pgx pool directly (the hot path of every
// refresh, without the database/sql layer).
func (d *DB) ChainState(ctx context.Context, activationID, keyHash string) (licensing.ChainState, error) {
	if d.pool != nil {
		return scanChainState(d.pool.QueryRow(ctx, d.rebind(chainStateQuery), keyHash, activationID), activationID, keyHash)
	}
	return scanChainState(d.queryRow(ctx, chainStateQuery, keyHash, activationID), activationID, keyHash)
}

func scanChainState(row rowScanner, activationID, keyHash string) (licensing.ChainState, error) {
	var (
		cs                        licensing.ChainState
		a                         = &cs.Activation
		e                         = &cs.Entitlement
		lease                     int64
		reqHash, prevHash, sealed sql.NullString
		status                    sql.NullInt64
		createdAt                 time.Time
	)
	err := row.Scan(
		&a.ID, &a.EntitlementID, &a.SeatID, &a.SeatName, &a.Fingerprint, &a.TokenJTI, &a.NonceHash,
		timeCol{&a.LeaseExpiresAt}, &a.Status, timeCol{&a.CreatedAt}, timeCol{&a.RefreshedAt}, timeCol{&a.DeactivatedAt},
		&e.ID, &e.TenantID, &e.ProductID, &e.Seats, timeCol{&e.ExpiresAt}, &lease, &e.Features, &e.Status, &e.CodeHash, timeCol{&e.CreatedAt},
		&cs.TenantStatus, &reqHash, &prevHash, &status, &sealed, timeCol{&createdAt})
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.ChainState{}, fmt.Errorf("activation %s: %w", activationID, ErrNotFound)
	}
	if err != nil {
		return licensing.ChainState{}, fmt.Errorf("store: read activation %s: %w", activationID, err)
	}
	e.Lease = time.Duration(lease) * time.Second
	if reqHash.Valid {
		cs.Answer = &licensing.IdempotentAnswer{ActivationID: a.ID, KeyHash: keyHash, RequestHash: reqHash.String,
			PrevNonceHash: prevHash.String, Status: int(status.Int64), Sealed: sealed.String, CreatedAt: createdAt}
	}
	return cs, nil
}

// RotateActivation is the one write of a call of the nonce chain: it sets
// the activation's nonce hash, token, lease and refresh time from a, if
// its nonce hash still is oldHash and it is active, and reports whether
// it did (the compare-and-swap of the chain, with the call's effect).
func (t *LicensingTx) RotateActivation(ctx context.Context, a licensing.StoredActivation, oldHash string) (bool, error) {
	return rowsChanged(t.exec(ctx, rotateActivation, a.NonceHash, a.TokenJTI, t.d.timeArg(a.LeaseExpiresAt), t.d.timeArg(a.RefreshedAt), a.ID, oldHash, licensing.StatusActive))
}

const rotateActivation = `UPDATE licensing_activations SET nonce_hash = ?, token_jti = ?, lease_expires_at = ?, refreshed_at = ?
	WHERE id = ? AND nonce_hash = ? AND status = ?`

// rowsChanged reports whether the statement changed exactly one row.
func rowsChanged(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("store: rotate nonce: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: rotate nonce: %w", err)
	}
	return n == 1, nil
}

// RotateChain is the write of a call of the nonce chain made without a
// transaction around it: RotateActivation and, when ans is not nil,
// PutIdempotentAnswer, both or neither. It reports false when the nonce
// hash was no longer oldHash (nothing written); a second answer under the
// same key is ErrConflict. On PostgreSQL it is one statement, sent to the
// pgx pool directly.
func (d *DB) RotateChain(ctx context.Context, a licensing.StoredActivation, oldHash string, ans *licensing.IdempotentAnswer) (bool, error) {
	args := []any{a.NonceHash, a.TokenJTI, d.timeArg(a.LeaseExpiresAt), d.timeArg(a.RefreshedAt), a.ID, oldHash, licensing.StatusActive}
	switch {
	case d.pool == nil && ans == nil:
		return rowsChanged(d.exec(ctx, rotateActivation, args...))
	case d.pool == nil:
		var swapped bool
		err := d.inLicensingTx(ctx, func(tx *LicensingTx) error {
			var err error
			if swapped, err = tx.RotateActivation(ctx, a, oldHash); err != nil || !swapped {
				return err
			}
			return tx.PutIdempotentAnswer(ctx, *ans)
		})
		return swapped && err == nil, err // rolled back on an error
	}
	q := rotateActivation
	if ans != nil {
		q = "WITH rotated AS (" + rotateActivation + ` RETURNING id)
		INSERT INTO licensing_idempotency (activation_id, key_hash, request_hash, prev_nonce_hash, status, sealed, created_at)
		SELECT id, ?, ?, ?, ?, ?, ? FROM rotated`
		args = append(args, ans.KeyHash, ans.RequestHash, ans.PrevNonceHash, ans.Status, ans.Sealed, d.timeArg(ans.CreatedAt))
	}
	tag, err := d.pool.Exec(ctx, d.rebind(q), args...)
	if isUniqueViolation(err) {
		return false, fmt.Errorf("%w: idempotency key already used", ErrConflict)
	}
	if err != nil {
		return false, fmt.Errorf("store: rotate nonce: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
