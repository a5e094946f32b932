-- Findings tracked across commits, waivers made through the API, and the
-- compact summary of each succeeded scan that the gate evaluates.
--
-- findings: one row per (project, fingerprint). Scan IDs are UUIDv7, so
-- their text order is the order the scans were created in: first_*, last_*
-- and fixed_* are kept in that order whatever order scans finish in.
-- It replaces the findings table of 0001, which nothing wrote.
DROP TABLE findings;
CREATE TABLE findings (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    fingerprint    TEXT NOT NULL,
    rule_id        TEXT NOT NULL,
    severity       TEXT NOT NULL,
    confidence     TEXT NOT NULL,
    file           TEXT NOT NULL,
    line           INTEGER NOT NULL,
    message        TEXT NOT NULL,
    suppressed     INTEGER NOT NULL, -- a #nosec comment covers it
    first_scan_id  TEXT NOT NULL,
    first_commit   TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    last_scan_id   TEXT NOT NULL,
    last_commit    TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    fixed_scan_id  TEXT,
    fixed_commit   TEXT,
    fixed_at       TEXT
);
CREATE UNIQUE INDEX findings_key ON findings (project_id, fingerprint);
CREATE INDEX findings_project ON findings (project_id, id);
CREATE INDEX findings_last_seen ON findings (project_id, last_scan_id);

-- recorded_scans: the scans RecordFindings folded in. A finding is fixed
-- in the first recorded default-branch scan created after its last
-- sighting (such a scan did not see it, or it would be its last sighting).
CREATE TABLE recorded_scans (
    scan_id     TEXT PRIMARY KEY REFERENCES scans (id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    commit_sha  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    on_default  INTEGER NOT NULL
);
CREATE INDEX recorded_scans_default ON recorded_scans (project_id, on_default, scan_id);

CREATE TABLE waivers (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule             TEXT NOT NULL DEFAULT '',
    path             TEXT NOT NULL DEFAULT '',
    fingerprint      TEXT NOT NULL DEFAULT '',
    owner            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    expires          TEXT NOT NULL, -- YYYY-MM-DD: the last day it applies (UTC)
    created_by       TEXT NOT NULL DEFAULT '', -- the API client that made it
    created_at       TEXT NOT NULL
);
CREATE INDEX waivers_project ON waivers (project_id, id);

-- waiver_versions counts the changes to a project's waivers: gate
-- decisions cached under an older version are never served again.
CREATE TABLE waiver_versions (
    project_id  TEXT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL
);

-- gate_summaries: what the gate needs of a succeeded scan (findings
-- without snippets, licensed SBOM components), as JSON, so that a gate
-- query does not read the result blob.
CREATE TABLE gate_summaries (
    scan_id  TEXT PRIMARY KEY REFERENCES scans (id) ON DELETE CASCADE,
    summary  TEXT NOT NULL
);
