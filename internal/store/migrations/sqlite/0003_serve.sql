-- What `vigil serve` needs beyond the first schema: the branch a commit
-- scan was triggered for (change gates take the default branch's latest
-- scan as their baseline), and lookups of image scans by reference (the
-- admission webhook sees tags).

ALTER TABLE scans ADD COLUMN branch TEXT;
CREATE INDEX scans_project_branch ON scans (project_id, branch, status, id);
CREATE INDEX scans_image_ref ON scans (image_ref, id);
