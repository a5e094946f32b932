-- Audit report bundles (package reports/publish): one signed ZIP per
-- (release, tenant, ticket), built once and then served as stored. The
-- ZIP's bytes are in the blob store under blob_key (content-addressed:
-- "sha256:" and sha256); this row says what they are and who they are for.
CREATE TABLE report_bundles (
    id           TEXT PRIMARY KEY,
    release_id   TEXT NOT NULL REFERENCES releases (id),
    tenant_id    TEXT NOT NULL REFERENCES licensing_tenants (id),
    -- The support ticket it answers; '' for a bundle built without one.
    ticket_id    TEXT NOT NULL DEFAULT '',
    ticket       TEXT NOT NULL, -- the ticket's number as printed ('none' without one)
    -- Names as printed in the bundle (they may change later elsewhere).
    product_id   TEXT NOT NULL,
    product      TEXT NOT NULL,
    version      TEXT NOT NULL,
    tenant_name  TEXT NOT NULL,
    sha256       TEXT NOT NULL, -- hex, of the ZIP
    size         BIGINT NOT NULL CHECK (size > 0),
    blob_key     TEXT NOT NULL,
    key_id       TEXT NOT NULL, -- the report-signing key that signed it
    files        TEXT NOT NULL, -- JSON array of {name, size, sha256}
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (release_id, tenant_id, ticket_id)
);
CREATE INDEX report_bundles_sha256 ON report_bundles (sha256);
