-- Commit statuses back to the forge, and Idempotency-Key on the
-- Management API's writes.

-- A project's forge: the API base commit statuses are posted to, and the
-- token that may post them. Opaque to the store: the server seals the
-- token before storing it (posting needs the token itself, so it cannot
-- be hashed).
CREATE TABLE project_forges (
    project_id  TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    api_url     TEXT NOT NULL,
    token       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- Idempotency keys of API writes, per OAuth client. A row is claimed
-- (status 0) before the request runs, so that a concurrent duplicate
-- sees it, and completed with the response to replay.
CREATE TABLE idempotency_keys (
    client_id     TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL, -- SHA-256 of method, path and body
    status        INTEGER NOT NULL DEFAULT 0, -- 0 while in progress
    content_type  TEXT NOT NULL DEFAULT '',
    location      TEXT NOT NULL DEFAULT '',
    body          BYTEA,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, idem_key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
