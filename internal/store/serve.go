package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-sec/vigil/ci"
)

// The queries of the server (package internal/server) beyond the scan life
// cycle of scan.go: lookups by commit, digest, reference and branch.

// SetScanBranch records the branch a commit scan was triggered for, if none
// is recorded yet (the first trigger names it). It does nothing for an
// empty branch.
func (d *DB) SetScanBranch(ctx context.Context, id, branch string) error {
	branch = strings.TrimSpace(branch)
	if branch == "" {
		return nil
	}
	if _, err := d.exec(ctx, "UPDATE scans SET branch = ? WHERE id = ? AND kind = ? AND branch IS NULL", branch, id, ci.KindCommit); err != nil {
		return fmt.Errorf("store: set branch of scan %q: %w", id, err)
	}
	return nil
}

// FindCommitScan returns the (first, not a rescan) scan of the project's
// commit, or ErrNotFound.
func (d *DB) FindCommitScan(ctx context.Context, projectID, commit string) (ci.Scan, error) {
	commit = strings.ToLower(strings.TrimSpace(commit))
	return d.oneScan(ctx, fmt.Sprintf("scan of commit %s", commit),
		"SELECT "+scanCols+" FROM scans WHERE project_id = ? AND commit_sha = ? AND rescan_of IS NULL", projectID, commit)
}

// ScannedCommits returns up to limit distinct commits of the project that
// were scanned and start with prefix, a lower-case hex string (checked:
// it is compared, never pasted into the query). A range on the sorted
// index finds them: every SHA starting with prefix sorts at or after it
// and before prefix+"g", as 'g' follows every hex digit.
func (d *DB) ScannedCommits(ctx context.Context, projectID, prefix string, limit int) ([]string, error) {
	if prefix == "" || strings.Trim(prefix, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: commit prefix %q is not lower-case hex", ErrInvalid, prefix)
	}
	rows, err := d.query(ctx, "SELECT DISTINCT commit_sha FROM scans WHERE project_id = ? AND commit_sha >= ? AND commit_sha < ? ORDER BY commit_sha LIMIT ?",
		projectID, prefix, prefix+"g", limit)
	if err != nil {
		return nil, fmt.Errorf("store: commits of %s starting with %s: %w", projectID, prefix, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("store: commits starting with %s: %w", prefix, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// FindImageScan returns the (first, not a rescan) scan of the image
// digest, or ErrNotFound.
func (d *DB) FindImageScan(ctx context.Context, digest string) (ci.Scan, error) {
	return d.oneScan(ctx, "scan of image "+digest,
		"SELECT "+scanCols+" FROM scans WHERE image_digest = ? AND rescan_of IS NULL", strings.TrimSpace(digest))
}

// SucceededScan returns the newest succeeded scan, first scan or rescan,
// of the commit or image digest n names, or ErrNotFound.
func (d *DB) SucceededScan(ctx context.Context, n ci.NewScan) (ci.Scan, error) {
	if n.Kind == ci.KindImage {
		digest := strings.TrimSpace(n.ImageDigest)
		return d.oneScan(ctx, "succeeded scan of image "+digest, "SELECT "+scanCols+
			" FROM scans WHERE image_digest = ? AND status = ? ORDER BY id DESC LIMIT 1", digest, ci.ScanSucceeded)
	}
	commit := strings.ToLower(strings.TrimSpace(n.CommitSHA))
	return d.oneScan(ctx, "succeeded scan of commit "+commit, "SELECT "+scanCols+
		" FROM scans WHERE project_id = ? AND commit_sha = ? AND status = ? ORDER BY id DESC LIMIT 1", n.ProjectID, commit, ci.ScanSucceeded)
}

// LatestImageScanByRef returns the newest first scan (not a rescan) of an
// image recorded with the reference (as given when it was enqueued), or
// ErrNotFound.
func (d *DB) LatestImageScanByRef(ctx context.Context, ref string) (ci.Scan, error) {
	return d.oneScan(ctx, "scan of image "+ref,
		"SELECT "+scanCols+" FROM scans WHERE image_ref = ? AND kind = ? AND rescan_of IS NULL ORDER BY id DESC LIMIT 1", ref, ci.KindImage)
}

// LatestBranchScan returns the newest succeeded scan of the project
// recorded for the branch, other than of commit exceptCommit, or
// ErrNotFound. A rescan counts: the baseline of change gates then holds
// what new rules found in old code, which no change introduced.
func (d *DB) LatestBranchScan(ctx context.Context, projectID, branch, exceptCommit string) (ci.Scan, error) {
	return d.oneScan(ctx, "succeeded scan of branch "+branch,
		"SELECT "+scanCols+` FROM scans WHERE project_id = ? AND branch = ? AND status = ? AND commit_sha <> ?
		ORDER BY id DESC LIMIT 1`, projectID, branch, ci.ScanSucceeded, exceptCommit)
}

// CountScans returns how many scans have the status.
func (d *DB) CountScans(ctx context.Context, status ci.ScanStatus) (int, error) {
	var n int
	if err := d.queryRow(ctx, "SELECT count(*) FROM scans WHERE status = ?", status).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count %s scans: %w", status, err)
	}
	return n, nil
}

// Ping checks that the database answers, for readiness probes. Its error
// names the database, never a DSN.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.read.PingContext(ctx); err != nil {
		return fmt.Errorf("the %s database does not answer", d.dialect)
	}
	if d.read != d.db {
		if err := d.db.PingContext(ctx); err != nil {
			return fmt.Errorf("the %s database does not answer", d.dialect)
		}
	}
	return nil
}

func (d *DB) oneScan(ctx context.Context, what, q string, args ...any) (ci.Scan, error) {
	s, err := scanScan(d.queryRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return ci.Scan{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return ci.Scan{}, fmt.Errorf("store: %s: %w", what, err)
	}
	return s, nil
}
