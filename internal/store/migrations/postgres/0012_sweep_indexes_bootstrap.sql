-- Indexes of the periodic sweep (licensing.Service.SweepWebhooks) and of
-- the lease and expiry queries, which otherwise scan whole tables.

-- Lapsed leases of every entitlement (store.LapsedLeaseEntitlements):
-- active activations by lease end. licensing_activations_lease leads
-- with entitlement_id and serves only per-entitlement queries.
CREATE INDEX licensing_activations_status_lease ON licensing_activations (status, lease_expires_at);

-- Entitlements expiring soon (store.ExpiringEntitlements): active ones by
-- expiry.
CREATE INDEX licensing_entitlements_status_expiry ON licensing_entitlements (status, expires_at);

-- Pruning events (store.PruneLicenseEvents): old events, and whether a
-- delivery of each still waits; event_id also serves the ON DELETE
-- CASCADE from events to deliveries.
CREATE INDEX license_webhook_events_created_at ON license_webhook_events (created_at);
CREATE INDEX license_webhook_deliveries_event ON license_webhook_deliveries (event_id, status);

-- The first-start admin client (store.CreateFirstOAuthClient): one row
-- at most, whose unique key lets one process of several starting on an
-- empty store create it.
CREATE TABLE oauth_bootstrap (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    client_id   TEXT NOT NULL REFERENCES oauth_clients (id) DEFERRABLE INITIALLY DEFERRED,
    created_at  TIMESTAMPTZ NOT NULL
);
