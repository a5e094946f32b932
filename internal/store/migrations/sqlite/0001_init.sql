-- The first schema. Times are TEXT in RFC 3339 UTC with six fractional
-- digits (text order is time order); IDs are UUIDv7 text (text order is
-- creation order).

CREATE TABLE projects (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    repo_url            TEXT NOT NULL DEFAULT '',
    default_branch      TEXT NOT NULL DEFAULT '',
    -- Opaque to the store: HMAC verification of push webhooks needs the
    -- secret itself, so the server seals it before storing it.
    webhook_secret      TEXT,
    schedule            TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL
);

CREATE TABLE policies (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL CHECK (version > 0),
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, version)
);

CREATE TABLE scans (
    id               TEXT PRIMARY KEY,
    project_id       TEXT REFERENCES projects (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('commit', 'image')),
    commit_sha       TEXT,
    image_digest     TEXT,
    image_ref        TEXT,
    status           TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    engine_versions  TEXT, -- JSON object: engine ID -> version
    timings          TEXT, -- JSON object: phase -> nanoseconds
    result_key       TEXT, -- blob key of the stored result
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    CHECK (
        (kind = 'commit' AND project_id IS NOT NULL AND commit_sha IS NOT NULL AND image_digest IS NULL)
        OR (kind = 'image' AND image_digest IS NOT NULL AND commit_sha IS NULL)
    )
);

-- One scan per (project, commit) and one per image digest: the idempotency
-- of triggers rests on these two keys.
CREATE UNIQUE INDEX scans_commit_key ON scans (project_id, commit_sha);
CREATE UNIQUE INDEX scans_image_key ON scans (image_digest);
CREATE INDEX scans_project_id_id ON scans (project_id, id);
CREATE INDEX scans_status_id ON scans (status, id);

CREATE TABLE findings (
    project_id       TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    fingerprint      TEXT NOT NULL,
    rule_id          TEXT NOT NULL,
    file             TEXT NOT NULL,
    first_seen_scan  TEXT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    last_seen_scan   TEXT NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    fixed_in_scan    TEXT REFERENCES scans (id) ON DELETE SET NULL,
    PRIMARY KEY (project_id, fingerprint)
);
