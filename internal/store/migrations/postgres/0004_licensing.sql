-- The licensing platform (package licensing): tenants, products,
-- entitlements with their activation codes, activations (seats), counted
-- feature usage, idempotent answers of the Licensing API, server keys.

CREATE TABLE licensing_tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE licensing_products (
    id          TEXT PRIMARY KEY, -- the ID client applications embed
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE licensing_entitlements (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES licensing_tenants (id),
    product_id     TEXT NOT NULL REFERENCES licensing_products (id),
    seats          INTEGER NOT NULL CHECK (seats > 0),
    expires_at     TIMESTAMPTZ, -- NULL: never
    lease_seconds  INTEGER NOT NULL CHECK (lease_seconds > 0),
    features       TEXT NOT NULL DEFAULT '{}', -- JSON object: key -> feature
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- HMAC-SHA256(server secret, normalised activation code), base64url:
    -- never the code itself. Lookup is an equality on this column.
    code_hash      TEXT NOT NULL UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX licensing_entitlements_tenant ON licensing_entitlements (tenant_id, id);

CREATE TABLE licensing_activations (
    id                TEXT PRIMARY KEY,
    entitlement_id    TEXT NOT NULL REFERENCES licensing_entitlements (id),
    seat_id           TEXT NOT NULL,
    seat_name         TEXT NOT NULL DEFAULT '',
    fingerprint       TEXT NOT NULL DEFAULT '', -- '' when none was bound
    token_jti         TEXT NOT NULL,            -- of the current access token
    nonce_hash        TEXT NOT NULL,            -- keyed hash of the last N-Nonce issued
    lease_expires_at  TIMESTAMPTZ NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('active', 'expired', 'deactivated')),
    created_at        TIMESTAMPTZ NOT NULL,
    refreshed_at      TIMESTAMPTZ NOT NULL,
    deactivated_at    TIMESTAMPTZ
);
-- One live row per seat: re-activating a seat reuses it.
CREATE UNIQUE INDEX licensing_activations_seat ON licensing_activations (entitlement_id, seat_id) WHERE status = 'active';
CREATE INDEX licensing_activations_lease ON licensing_activations (entitlement_id, status, lease_expires_at);

-- Counted features checked out, and usage tracked, per activation.
CREATE TABLE licensing_feature_usage (
    activation_id  TEXT NOT NULL REFERENCES licensing_activations (id) ON DELETE CASCADE,
    feature        TEXT NOT NULL,
    checked_out    INTEGER NOT NULL DEFAULT 0 CHECK (checked_out >= 0),
    tracked        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (activation_id, feature)
);

-- The stored answer of a Licensing API call made with an Idempotency-Key,
-- so that a retry gets it again instead of a nonce mismatch.
CREATE TABLE licensing_idempotency (
    activation_id    TEXT NOT NULL REFERENCES licensing_activations (id) ON DELETE CASCADE,
    key_hash         TEXT NOT NULL,
    request_hash     TEXT NOT NULL, -- method, path and body of the first request
    prev_nonce_hash  TEXT NOT NULL, -- the nonce the first request presented
    status           INTEGER NOT NULL,
    sealed           TEXT NOT NULL, -- body and issued nonce, AES-GCM sealed
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (activation_id, key_hash)
);
CREATE INDEX licensing_idempotency_created_at ON licensing_idempotency (created_at);

-- Server key material: token signing keys (ES256, PEM) and the secret
-- that keys code, nonce and idempotency hashes. One active key per kind.
CREATE TABLE licensing_keys (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('signing', 'secret')),
    material    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX licensing_keys_active_kind ON licensing_keys (kind) WHERE retired_at IS NULL;
