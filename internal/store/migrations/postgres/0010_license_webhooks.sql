-- Webhooks for licensing events (package licensing, events.go): each
-- tenant's Ed25519 signing key, its endpoints, the events (an outbox
-- written in the transaction of the effect), one delivery per event and
-- endpoint, and the attempts of each delivery.

CREATE TABLE license_webhook_keys (
    tenant_id    TEXT PRIMARY KEY REFERENCES licensing_tenants (id),
    public_key   TEXT NOT NULL, -- whpk_…
    private_key  TEXT NOT NULL, -- the seed, AES-GCM sealed with a key derived from the licensing secret
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE license_webhooks (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES licensing_tenants (id),
    url              TEXT NOT NULL,
    events           TEXT NOT NULL DEFAULT '', -- space-separated event types; '' for every type
    secret           TEXT NOT NULL DEFAULT '', -- the v1 HMAC secret, sealed; '' for none
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_reason  TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    disabled_at      TIMESTAMPTZ
);
CREATE INDEX license_webhooks_tenant ON license_webhooks (tenant_id, created_at, id);

CREATE TABLE license_webhook_events (
    id          TEXT PRIMARY KEY, -- the webhook-id: msg_…
    tenant_id   TEXT NOT NULL REFERENCES licensing_tenants (id),
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,    -- the exact JSON body sent
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE license_webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES license_webhook_events (id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL REFERENCES license_webhooks (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_status      INTEGER NOT NULL DEFAULT 0, -- HTTP status of the last attempt, 0 for none
    last_error       TEXT NOT NULL DEFAULT '',
    queued_at        TIMESTAMPTZ, -- when its job was inserted; NULL: not yet (the sweeper inserts it)
    last_attempt_at  TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX license_webhook_deliveries_webhook ON license_webhook_deliveries (webhook_id, created_at, id);
CREATE INDEX license_webhook_deliveries_unqueued ON license_webhook_deliveries (created_at) WHERE status = 'pending' AND queued_at IS NULL;

CREATE TABLE license_webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES license_webhook_deliveries (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0, -- HTTP status, 0 when there was no answer
    outcome      TEXT NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, attempt)
);

-- Entitlements already announced as expiring, per expiry date, so that
-- each is announced once (again only if its expiry changes).
CREATE TABLE license_webhook_notices (
    entitlement_id  TEXT NOT NULL REFERENCES licensing_entitlements (id),
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (entitlement_id, expires_at)
);
