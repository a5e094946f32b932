-- Products and releases (issue 10): the licensing products a project
-- ships in, which projects are in production, and releases, the named,
-- immutable sets of scans a product's reports are made of.

-- production: the project's default branch goes into its products'
-- releases when a release names no project (reports.Service).
ALTER TABLE projects ADD COLUMN production BOOLEAN NOT NULL DEFAULT FALSE;

-- project_products: the licensing products a project ships in. Updating a
-- project's products replaces all of its rows in one transaction.
CREATE TABLE project_products (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    product_id  TEXT NOT NULL REFERENCES licensing_products (id),
    PRIMARY KEY (project_id, product_id)
);
CREATE INDEX project_products_product ON project_products (product_id, project_id);

-- releases: one version of one product, never changed once made. Its
-- status is not stored: it follows from its items' scans (all succeeded:
-- ready; one failed: failed; else pending), and a succeeded scan is final.
CREATE TABLE releases (
    id          TEXT PRIMARY KEY,
    product_id  TEXT NOT NULL REFERENCES licensing_products (id),
    version     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (product_id, version)
);
-- Release lists are keyset-paginated on (created_at, id) per product
-- (store.listPage), and the latest release is read from the other end.
CREATE INDEX releases_product_page ON releases (product_id, created_at, id);

-- release_items: the commits and image digests of a release, in the order
-- given, each with the scan that stands for it. A scan in a release is
-- not deleted: DeleteProject refuses a project with scans in releases.
CREATE TABLE release_items (
    release_id    TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL, -- 0, 1, … in the order given
    kind          TEXT NOT NULL CHECK (kind IN ('commit', 'image')),
    project       TEXT, -- the project's name (names never change)
    commit_sha    TEXT,
    image_ref     TEXT,
    image_digest  TEXT,
    scan_id       TEXT NOT NULL REFERENCES scans (id),
    PRIMARY KEY (release_id, seq),
    CHECK (
        (kind = 'commit' AND project IS NOT NULL AND commit_sha IS NOT NULL AND image_digest IS NULL)
        OR (kind = 'image' AND image_digest IS NOT NULL AND commit_sha IS NULL)
    )
);
CREATE INDEX release_items_scan ON release_items (scan_id);
