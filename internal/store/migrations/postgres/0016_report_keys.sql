-- Report-signing keys (ECDSA P-256): the public key in the clear, the
-- private key sealed under a key derived from the seal key (never in the
-- clear here) and erased when the key is retired. One current (not
-- retired) key per purpose; the partial unique index makes the loser of a
-- race to store the first key, or to rotate, a conflict.
CREATE TABLE report_keys (
    id             TEXT PRIMARY KEY, -- the RFC 7638 thumbprint
    purpose        TEXT NOT NULL CHECK (purpose IN ('reports')),
    public_key     TEXT NOT NULL,    -- PKIX PEM
    sealed_private TEXT NOT NULL,    -- '' once retired
    created_at     TIMESTAMPTZ NOT NULL,
    retired_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX report_keys_current ON report_keys (purpose) WHERE retired_at IS NULL;
