-- Report schedules (package reports, schedules.go): a product's releases
-- cut on a cron schedule from its production projects and the images
-- scanned in the last N days. The reports domain's own table, keyed by
-- the licensing product: licensing knows nothing of reports. No row: no
-- schedule, the defaults.
CREATE TABLE report_schedules (
    product_id          TEXT PRIMARY KEY REFERENCES licensing_products (id),
    spec                TEXT NOT NULL DEFAULT '', -- robfig/cron/v3 standard syntax; '' for none
    image_window_days   INTEGER NOT NULL DEFAULT 30 CHECK (image_window_days BETWEEN 1 AND 365),
    image_repositories  TEXT NOT NULL DEFAULT '', -- space-separated full repository names, sorted
    updated_at          TIMESTAMPTZ NOT NULL
);

-- The images a scheduled release takes: first scans of image digests in
-- a window of time (by project, or by repository through image_ref).
CREATE INDEX scans_image_first_created ON scans (created_at) WHERE kind = 'image' AND rescan_of IS NULL;
