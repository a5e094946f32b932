-- Secure links to report bundles (package reports, links.go). A link is
-- bound to a ticket, its tenant and one bundle by its SHA-256; its token
-- is never stored, only HMAC-SHA256 of it under a key derived from the
-- seal key (which lives outside the database). Every change is an event
-- of the ticket's history (ticket_events), announced to the tenant in the
-- same transaction (license_webhook_events).
CREATE TABLE report_links (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE, -- base64url HMAC-SHA256 of the token
    ticket_id      TEXT NOT NULL REFERENCES tickets (id),
    ticket_number  BIGINT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES licensing_tenants (id),
    bundle_id      TEXT NOT NULL, -- the bundles' store (reports.BundleReader)
    bundle_sha256  TEXT NOT NULL, -- hex: what the link serves, and nothing else
    product_id     TEXT NOT NULL,
    version        TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    max_downloads  INTEGER NOT NULL CHECK (max_downloads > 0),
    downloads      INTEGER NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    created_by     TEXT NOT NULL, -- the OAuth client, or 'system'
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_by     TEXT,
    revoke_reason  TEXT,
    expired_at     TEXT, -- when the expiry was recorded in the history
    replaces       TEXT REFERENCES report_links (id), -- reissued from
    replaced_by    TEXT
);
CREATE INDEX report_links_ticket_page ON report_links (ticket_id, created_at, id);
CREATE INDEX report_links_tenant_page ON report_links (tenant_id, created_at, id);
CREATE INDEX report_links_page ON report_links (created_at, id);
-- The expiry sweep: links due to be recorded as expired.
CREATE INDEX report_links_due ON report_links (expires_at) WHERE revoked_at IS NULL AND expired_at IS NULL;

-- Every request a link served or refused (not the unknown tokens').
CREATE TABLE report_link_access (
    id              TEXT PRIMARY KEY,
    link_id         TEXT NOT NULL REFERENCES report_links (id),
    created_at      TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('view', 'download')),
    client_address  TEXT NOT NULL,
    user_agent      TEXT NOT NULL,
    range_header    TEXT NOT NULL DEFAULT '',
    counted         INTEGER NOT NULL DEFAULT 0 CHECK (counted IN (0, 1)),
    status          INTEGER NOT NULL,
    bytes           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX report_link_access_page ON report_link_access (link_id, created_at, id);
-- Download grants: a download this client address was served lately.
CREATE INDEX report_link_access_grant ON report_link_access (link_id, client_address, created_at) WHERE kind = 'download';
