package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-sec/vigil/ci"
)

// Scheduled rescans (migration 0005). A rescan is a scan of its own of a
// commit or image digest that has a first scan, pointing at it through
// rescan_of. The uniqueness of (project, commit) and of the digest holds
// for first scans only: pushes and registry events stay idempotent, and
// FindCommitScan, FindImageScan and LatestImageScanByRef (what deploy
// gates read) keep answering with first scans.

// EnqueueRescan records a queued rescan of the first scan of, unless a
// rescan of it is queued or running already: then it returns that one,
// with created false. A rescan of a rescan is a rescan of its first scan.
// The new scan inherits the branch of the first.
func (d *DB) EnqueueRescan(ctx context.Context, of ci.Scan) (scan ci.Scan, created bool, err error) {
	firstID := of.ID
	if r, err := d.RescanOf(ctx, of.ID); err != nil {
		return ci.Scan{}, false, err
	} else if r != "" {
		firstID = r
	}
	pending, err := scanScan(d.writeRow(ctx, "SELECT "+scanCols+` FROM scans WHERE rescan_of = ? AND status IN (?, ?)
		ORDER BY id DESC LIMIT 1`, firstID, ci.ScanQueued, ci.ScanRunning))
	switch {
	case err == nil:
		return pending, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return ci.Scan{}, false, fmt.Errorf("store: enqueue rescan of %s: %w", firstID, err)
	}
	first, err := d.GetScan(ctx, firstID)
	if err != nil {
		return ci.Scan{}, false, err
	}
	branch := first.Branch
	id := newID()
	_, err = d.exec(ctx, `INSERT INTO scans
		(id, project_id, kind, commit_sha, image_digest, image_ref, status, attempts, created_at, branch, rescan_of)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
		id, nullString(first.ProjectID), first.Kind, nullString(first.CommitSHA), nullString(first.ImageDigest),
		nullString(first.ImageRef), ci.ScanQueued, d.timeArg(now()), nullString(branch), firstID)
	if isForeignKeyViolation(err) {
		return ci.Scan{}, false, fmt.Errorf("scan %q: %w", firstID, ErrNotFound)
	}
	if err != nil {
		return ci.Scan{}, false, fmt.Errorf("store: enqueue rescan of %s: %w", firstID, err)
	}
	scan, err = scanScan(d.writeRow(ctx, "SELECT "+scanCols+" FROM scans WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return ci.Scan{}, false, fmt.Errorf("scan %q: %w", firstID, ErrNotFound)
	}
	if err != nil {
		return ci.Scan{}, false, fmt.Errorf("store: enqueue rescan of %s: %w", firstID, err)
	}
	return scan, true, nil
}

// RescanOf returns the ID of the first scan the scan rescans, "" if the
// scan is a first scan. ErrNotFound if there is no such scan.
func (d *DB) RescanOf(ctx context.Context, id string) (string, error) {
	var of string
	err := d.queryRow(ctx, "SELECT rescan_of FROM scans WHERE id = ?", id).Scan(textCol{&of})
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("scan %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: rescan of scan %q: %w", id, err)
	}
	return of, nil
}

// RecentImageScans returns the first scans of image digests recorded for
// the project since the time, newest first.
func (d *DB) RecentImageScans(ctx context.Context, projectID string, since time.Time) ([]ci.Scan, error) {
	return listRows(ctx, d, "recent image scans", scanScan, "SELECT "+scanCols+` FROM scans
		WHERE project_id = ? AND kind = ? AND rescan_of IS NULL AND created_at >= ?
		ORDER BY id DESC LIMIT ?`, projectID, ci.KindImage, d.timeArg(since), ci.MaxScanLimit)
}

// RequeueRunning moves running scans back to queued, for scans whose job a
// dead process left (see jobs.Client.Reclaim); the attempt stays counted.
// It returns how many it moved.
func (d *DB) RequeueRunning(ctx context.Context, ids ...string) (int, error) {
	n := 0
	for _, id := range ids {
		res, err := d.exec(ctx, "UPDATE scans SET status = ? WHERE id = ? AND status = ?", ci.ScanQueued, id, ci.ScanRunning)
		if err != nil {
			return n, fmt.Errorf("store: requeue scan %q: %w", id, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("store: requeue scan %q: %w", id, err)
		}
		n += int(k)
	}
	return n, nil
}
