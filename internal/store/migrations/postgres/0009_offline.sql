-- Offline activation (package licensing/offline): the per-tenant server
-- keys, the activations made offline, and the request IDs already used.

-- A tenant's offline keys: HPKE KEM keys that requests are sealed to
-- (kind x25519 or mlkem768-x25519) and the Ed25519 key that signs license
-- files. The private key is AES-GCM sealed with a key derived from the
-- licensing secret; never stored in the clear. One active key per tenant
-- and kind; retired keys still open requests sealed to them.
CREATE TABLE licensing_offline_keys (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES licensing_tenants (id),
    kind            TEXT NOT NULL CHECK (kind IN ('x25519', 'mlkem768-x25519', 'ed25519')),
    public_key      TEXT NOT NULL, -- base64
    sealed_private  TEXT NOT NULL, -- base64url(nonce || AES-GCM ciphertext)
    created_at      TIMESTAMPTZ NOT NULL,
    retired_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX licensing_offline_keys_active ON licensing_offline_keys (tenant_id, kind) WHERE retired_at IS NULL;

-- Activations taken by an offline request: the client's proof of
-- possession for refresh and deactivation (a keyed hash of the secret
-- derived from its private key) and the hash of its public key.
CREATE TABLE licensing_offline_activations (
    activation_id    TEXT PRIMARY KEY REFERENCES licensing_activations (id) ON DELETE CASCADE,
    secret_hash      TEXT NOT NULL,
    client_key_hash  TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);

-- Request IDs of the offline requests served, so that a replayed request
-- is refused. Rows older than the request window are pruned.
CREATE TABLE licensing_offline_requests (
    request_id  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX licensing_offline_requests_created_at ON licensing_offline_requests (created_at);
