-- OAuth2 client_credentials for the Management API (package licensing/oauth).

CREATE TABLE oauth_clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    -- "hmac-sha256$<base64url>": never the secret itself.
    secret_hash  TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '', -- space-separated (RFC 6749 §3.3)
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

-- Access tokens revoked before they expire (RFC 7009). A row is useless
-- once expires_at has passed, and may be pruned.
CREATE TABLE oauth_revoked_tokens (
    jti         TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT NOT NULL
);
CREATE INDEX oauth_revoked_tokens_expires_at ON oauth_revoked_tokens (expires_at);

-- Server key material: token signing keys (ES256 private keys, PEM) and
-- the secret-hashing pepper. One active (not retired) key per kind.
CREATE TABLE oauth_keys (
    id          TEXT PRIMARY KEY, -- the JWS kid for signing keys
    kind        TEXT NOT NULL CHECK (kind IN ('signing', 'pepper')),
    material    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    retired_at  TEXT
);
CREATE UNIQUE INDEX oauth_keys_active_kind ON oauth_keys (kind) WHERE retired_at IS NULL;
