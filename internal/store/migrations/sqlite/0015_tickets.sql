-- Support tickets (package reports, tickets.go): a tenant asks for the
-- latest audit report of some products; staff approve or reject. Every
-- change is an event of the ticket's history, and is announced to the
-- tenant through its licensing webhook endpoints (license_webhook_events,
-- written in the same transaction).

-- OAuth clients bound to a tenant act for it alone: their access tokens
-- carry it (the vigil_tenant claim). NULL: a client bound to none.
ALTER TABLE oauth_clients ADD COLUMN tenant_id TEXT REFERENCES licensing_tenants (id);

-- The last ticket number given: numbers are short, sequential and never
-- reused in one installation. One row; taking a number updates it, which
-- serialises the transactions that open tickets.
CREATE TABLE ticket_numbers (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    last  BIGINT NOT NULL
);
INSERT INTO ticket_numbers (id, last) VALUES (1, 0);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    number      BIGINT NOT NULL UNIQUE,
    tenant_id   TEXT NOT NULL REFERENCES licensing_tenants (id),
    products    TEXT NOT NULL, -- space-separated product IDs, sorted
    subject     TEXT NOT NULL,
    message     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'approved', 'rejected')),
    created_by  TEXT NOT NULL, -- the OAuth client that opened it
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- Set by approval: the release asked for (NULL: the latest when the
    -- bundle is built).
    approved_release  TEXT,
    -- For the secure-links step, which fills them when it builds the
    -- bundle and creates the link: NULL until then.
    bundle_digest  TEXT,
    link_id        TEXT
);
CREATE INDEX tickets_page ON tickets (created_at, id);
CREATE INDEX tickets_tenant_page ON tickets (tenant_id, created_at, id);
CREATE INDEX tickets_status_page ON tickets (status, created_at, id);

-- A ticket's history: one row per change, numbered from 1.
CREATE TABLE ticket_events (
    ticket_id  TEXT NOT NULL REFERENCES tickets (id),
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL, -- opened, commented, approved, rejected (and the links' events)
    actor      TEXT NOT NULL, -- the OAuth client's ID, or 'system'
    body       TEXT NOT NULL DEFAULT '{}', -- JSON object: what the change said (message, reason, release…)
    at         TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
