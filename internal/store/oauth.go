package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/licensing/oauth"
)

const oauthClientCols = "id, name, secret_hash, scopes, created_at, revoked_at, tenant_id"

func scanOAuthClient(row interface{ Scan(...any) error }) (oauth.StoredClient, error) {
	var (
		c      oauth.StoredClient
		scopes string
	)
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &scopes, timeCol{&c.CreatedAt}, timeCol{&c.RevokedAt}, textCol{&c.TenantID})
	c.Scopes = strings.Fields(scopes)
	return c, err
}

// CreateOAuthClient stores a new client and returns it with its creation
// time set. ID, Name and SecretHash must not be empty (ErrInvalid), and the
// ID must be new (ErrConflict). Scopes must not contain spaces.
func (d *DB) CreateOAuthClient(ctx context.Context, c oauth.StoredClient) (oauth.StoredClient, error) {
	c, err := newOAuthClient(c)
	if err != nil {
		return oauth.StoredClient{}, err
	}
	_, err = d.exec(ctx, "INSERT INTO oauth_clients ("+oauthClientCols+") VALUES (?, ?, ?, ?, ?, ?, ?)", oauthClientArgs(d, c)...)
	if isUniqueViolation(err) {
		return oauth.StoredClient{}, fmt.Errorf("%w: an oauth client with id %q exists", ErrConflict, c.ID)
	}
	if isForeignKeyViolation(err) {
		return oauth.StoredClient{}, fmt.Errorf("tenant %q: %w", c.TenantID, ErrNotFound)
	}
	if err != nil {
		return oauth.StoredClient{}, fmt.Errorf("store: create oauth client %q: %w", c.Name, err)
	}
	return c, nil
}

// oauthClientArgs are the values of oauthClientCols for a new client.
func oauthClientArgs(d *DB, c oauth.StoredClient) []any {
	return []any{c.ID, c.Name, c.SecretHash, strings.Join(c.Scopes, " "), d.timeArg(c.CreatedAt), nil, nullString(c.TenantID)}
}

// newOAuthClient checks a client to create and sets its times.
func newOAuthClient(c oauth.StoredClient) (oauth.StoredClient, error) {
	c.Name = strings.TrimSpace(c.Name)
	switch {
	case c.ID == "":
		return oauth.StoredClient{}, fmt.Errorf("%w: oauth client id is empty", ErrInvalid)
	case c.Name == "":
		return oauth.StoredClient{}, fmt.Errorf("%w: oauth client name is empty", ErrInvalid)
	case c.SecretHash == "":
		return oauth.StoredClient{}, fmt.Errorf("%w: oauth client %q has no secret hash", ErrInvalid, c.Name)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return oauth.StoredClient{}, fmt.Errorf("%w: scope %q", ErrInvalid, s)
		}
	}
	c.CreatedAt = now()
	c.RevokedAt = time.Time{}
	return c, nil
}

// CreateFirstOAuthClient stores c only if the store has never had a
// client, and reports whether it did. Of processes racing on an empty
// store exactly one creates its client: each first inserts the single
// row of oauth_bootstrap, which the unique key lets one transaction hold
// (the others wait for it, then find it taken), and the client goes in
// the same transaction, so a crash leaves neither.
func (d *DB) CreateFirstOAuthClient(ctx context.Context, c oauth.StoredClient) (oauth.StoredClient, bool, error) {
	c, err := newOAuthClient(c)
	if err != nil {
		return oauth.StoredClient{}, false, err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return oauth.StoredClient{}, false, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, d.rebind("INSERT INTO oauth_bootstrap (id, client_id, created_at) VALUES (1, ?, ?) ON CONFLICT DO NOTHING"),
		c.ID, d.timeArg(c.CreatedAt))
	won, err := oneRowChanged(res, err)
	if err != nil {
		return oauth.StoredClient{}, false, fmt.Errorf("store: bootstrap: %w", err)
	}
	if !won {
		return oauth.StoredClient{}, false, nil
	}
	// Installations older than oauth_bootstrap have clients but no row.
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM oauth_clients").Scan(&n); err != nil {
		return oauth.StoredClient{}, false, fmt.Errorf("store: bootstrap: %w", err)
	}
	if n > 0 {
		return oauth.StoredClient{}, false, nil // rolled back: the row stays free, as before
	}
	if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO oauth_clients ("+oauthClientCols+") VALUES (?, ?, ?, ?, ?, ?, ?)"), oauthClientArgs(d, c)...); err != nil {
		return oauth.StoredClient{}, false, fmt.Errorf("store: create oauth client %q: %w", c.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return oauth.StoredClient{}, false, fmt.Errorf("store: commit: %w", err)
	}
	return c, true, nil
}

// GetOAuthClient returns the client with the ID, revoked or not, or
// ErrNotFound.
func (d *DB) GetOAuthClient(ctx context.Context, id string) (oauth.StoredClient, error) {
	return getRow(ctx, d, "oauth client", id, scanOAuthClient, "SELECT "+oauthClientCols+" FROM oauth_clients WHERE id = ?", id)
}

// ListOAuthClients returns every client, revoked ones included, oldest
// first.
func (d *DB) ListOAuthClients(ctx context.Context) ([]oauth.StoredClient, error) {
	return listRows(ctx, d, "oauth clients", scanOAuthClient, "SELECT "+oauthClientCols+" FROM oauth_clients ORDER BY created_at, id")
}

// RevokeOAuthClient marks the client revoked. Revoking a revoked client
// keeps its first revocation time. ErrNotFound if there is no such client.
func (d *DB) RevokeOAuthClient(ctx context.Context, id string) error {
	res, err := d.exec(ctx, "UPDATE oauth_clients SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", d.timeArg(now()), id)
	if err != nil {
		return fmt.Errorf("store: revoke oauth client %q: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: revoke oauth client %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("oauth client %q: %w", id, ErrNotFound)
	}
	return nil
}

// RevokeOAuthToken records the access token as revoked. Revoking it again
// is a no-op.
func (d *DB) RevokeOAuthToken(ctx context.Context, t oauth.RevokedToken) error {
	if t.JTI == "" || t.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: a revoked token needs a jti and an expiry", ErrInvalid)
	}
	_, err := d.exec(ctx, `INSERT INTO oauth_revoked_tokens (jti, client_id, expires_at, revoked_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING`,
		t.JTI, t.ClientID, d.timeArg(t.ExpiresAt), d.timeArg(now()))
	if err != nil {
		return fmt.Errorf("store: revoke oauth token: %w", err)
	}
	return nil
}

// OAuthTokenRevoked reports whether the access token with the jti has been
// revoked (and not pruned).
func (d *DB) OAuthTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	if err := d.queryRow(ctx, "SELECT count(*) FROM oauth_revoked_tokens WHERE jti = ?", jti).Scan(&n); err != nil {
		return false, fmt.Errorf("store: read revoked oauth token: %w", err)
	}
	return n > 0, nil
}

// PruneOAuthRevokedTokens deletes the revocations of tokens that expired
// before the time, in batches (pruneInBatches), and returns how many it
// deleted.
func (d *DB) PruneOAuthRevokedTokens(ctx context.Context, before time.Time) (int64, error) {
	return d.pruneInBatches(ctx, "revoked oauth tokens", "oauth_revoked_tokens", "jti", "expires_at < ?", d.timeArg(before))
}

const oauthKeyCols = "id, kind, material, created_at, retired_at"

func scanOAuthKey(row interface{ Scan(...any) error }) (oauth.Key, error) {
	var k oauth.Key
	err := row.Scan(&k.ID, &k.Kind, &k.Material, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
	return k, err
}

// EnsureOAuthKey returns the active key of k.Kind, storing k as that key
// first if there is none. Of several processes racing to store the first
// key, one wins and all get its key.
func (d *DB) EnsureOAuthKey(ctx context.Context, k oauth.Key) (oauth.Key, error) {
	if k.ID == "" || k.Material == "" {
		return oauth.Key{}, fmt.Errorf("%w: an oauth key needs an id and material", ErrInvalid)
	}
	if k.Kind != oauth.KeySigning && k.Kind != oauth.KeyPepper {
		return oauth.Key{}, fmt.Errorf("%w: oauth key kind %q", ErrInvalid, k.Kind)
	}
	// The partial unique index on (kind) WHERE retired_at IS NULL makes the
	// loser of a race a no-op.
	_, err := d.exec(ctx, `INSERT INTO oauth_keys (`+oauthKeyCols+`) VALUES (?, ?, ?, ?, NULL)
		ON CONFLICT DO NOTHING`, k.ID, k.Kind, k.Material, d.timeArg(now()))
	if err != nil {
		return oauth.Key{}, fmt.Errorf("store: store oauth %s key: %w", k.Kind, err)
	}
	// Read on the write pool: on SQLite it has just written.
	got, err := scanOAuthKey(d.db.QueryRowContext(ctx, d.rebind(
		"SELECT "+oauthKeyCols+" FROM oauth_keys WHERE kind = ? AND retired_at IS NULL"), k.Kind))
	if err != nil {
		return oauth.Key{}, fmt.Errorf("store: read oauth %s key: %w", k.Kind, err)
	}
	return got, nil
}

// ListOAuthKeys returns the keys of the kind, retired ones included,
// newest first.
func (d *DB) ListOAuthKeys(ctx context.Context, kind string) ([]oauth.Key, error) {
	return listRows(ctx, d, "oauth keys", scanOAuthKey, "SELECT "+oauthKeyCols+" FROM oauth_keys WHERE kind = ? ORDER BY created_at DESC, id", kind)
}

// ActiveOAuthKey returns the active key of the kind, or ErrNotFound.
func (d *DB) ActiveOAuthKey(ctx context.Context, kind string) (oauth.Key, error) {
	k, err := scanOAuthKey(d.writeRow(ctx, "SELECT "+oauthKeyCols+" FROM oauth_keys WHERE kind = ? AND retired_at IS NULL", kind))
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Key{}, fmt.Errorf("oauth %s key: %w", kind, ErrNotFound)
	}
	if err != nil {
		return oauth.Key{}, fmt.Errorf("store: read oauth %s key: %w", kind, err)
	}
	return k, nil
}

// ReplaceOAuthKeyMaterial sets the key's material to material if it is
// still old, and reports whether it did.
func (d *DB) ReplaceOAuthKeyMaterial(ctx context.Context, id, old, material string) (bool, error) {
	ok, err := oneRowChanged(d.exec(ctx, "UPDATE oauth_keys SET material = ? WHERE id = ? AND material = ?", material, id, old))
	if err != nil {
		return false, fmt.Errorf("store: update oauth key %s: %w", id, err)
	}
	return ok, nil
}

// DeleteOAuthKey deletes the key with the ID, if there is one.
func (d *DB) DeleteOAuthKey(ctx context.Context, id string) error {
	if _, err := d.exec(ctx, "DELETE FROM oauth_keys WHERE id = ?", id); err != nil {
		return fmt.Errorf("store: delete oauth key %s: %w", id, err)
	}
	return nil
}

// ReplaceOAuthSecretHash sets the client's secret hash to hash if it is
// still old, and reports whether it did.
func (d *DB) ReplaceOAuthSecretHash(ctx context.Context, clientID, old, hash string) (bool, error) {
	ok, err := oneRowChanged(d.exec(ctx, "UPDATE oauth_clients SET secret_hash = ? WHERE id = ? AND secret_hash = ?", hash, clientID, old))
	if err != nil {
		return false, fmt.Errorf("store: update oauth client %s: %w", clientID, err)
	}
	return ok, nil
}

// CountOAuthSecretHashes returns how many clients that are not revoked
// have a secret hash starting with prefix.
func (d *DB) CountOAuthSecretHashes(ctx context.Context, prefix string) (int, error) {
	var n int
	// substr, not LIKE: a prefix holding % or _ would be a pattern.
	err := d.writeRow(ctx, "SELECT COUNT(*) FROM oauth_clients WHERE revoked_at IS NULL AND substr(secret_hash, 1, ?) = ?", len(prefix), prefix).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count oauth secret hashes: %w", err)
	}
	return n, nil
}

var _ oauth.Store = (*DB)(nil)
