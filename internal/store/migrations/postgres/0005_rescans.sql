-- Scheduled rescans (cron): a rescan is a new scan row of a commit or an
-- image digest scanned before, pointing at that first scan. The
-- one-scan-per-(project, commit) and one-per-digest keys now hold for
-- first scans only, so pushes and registry events stay idempotent while
-- every rescan is a run of its own.

DROP INDEX scans_commit_key;
DROP INDEX scans_image_key;
ALTER TABLE scans ADD COLUMN rescan_of TEXT REFERENCES scans (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX scans_commit_key ON scans (project_id, commit_sha) WHERE rescan_of IS NULL;
CREATE UNIQUE INDEX scans_image_key ON scans (image_digest) WHERE rescan_of IS NULL;
CREATE INDEX scans_rescan_of ON scans (rescan_of, id);
