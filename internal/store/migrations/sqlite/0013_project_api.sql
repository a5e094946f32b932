-- Projects managed through the API: webhook secret rotation and paged
-- waiver lists.
--
-- A rotated webhook secret keeps working until previous_secret_until, so
-- that a forge's webhook can be updated without dropping pushes. Only the
-- secret just replaced is kept; like webhook_secret it is opaque to the
-- store (sealed by the server).
ALTER TABLE projects ADD COLUMN previous_webhook_secret TEXT;
ALTER TABLE projects ADD COLUMN previous_secret_until TEXT;

-- Waiver lists are keyset-paginated on (created_at, id) per project
-- (store.listPage).
CREATE INDEX waivers_project_page ON waivers (project_id, created_at, id);

-- Project lists too.
CREATE INDEX projects_page ON projects (created_at, id);
