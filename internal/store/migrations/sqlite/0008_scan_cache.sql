-- The scan cache: engine outputs (and engines' partial results, such as
-- the SAST engine's per-package results) by key. The key is the SHA-256,
-- in hex, of what the value is a pure function of (engine, version,
-- configuration, content); the value is a blob in the blob store. Every
-- worker reads and writes the same rows, so no worker repeats another's
-- work.

CREATE TABLE scan_cache (
    cache_key   TEXT PRIMARY KEY,
    blob_key    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);
