package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/ci"
)

var (
	commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	digestRE = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)
)

// validateNewScan normalises n and checks it names one commit of a
// project or one image digest.
func validateNewScan(n *ci.NewScan) error {
	n.CommitSHA = strings.ToLower(strings.TrimSpace(n.CommitSHA))
	n.ImageDigest = strings.TrimSpace(n.ImageDigest)
	switch n.Kind {
	case ci.KindCommit:
		if n.ProjectID == "" {
			return fmt.Errorf("%w: a commit scan needs a project", ErrInvalid)
		}
		if !commitRE.MatchString(n.CommitSHA) {
			return fmt.Errorf("%w: commit %q is not a full commit ID", ErrInvalid, n.CommitSHA)
		}
		if n.ImageDigest != "" || n.ImageRef != "" {
			return fmt.Errorf("%w: a commit scan has no image", ErrInvalid)
		}
	case ci.KindImage:
		if !digestRE.MatchString(n.ImageDigest) {
			return fmt.Errorf("%w: image digest %q is not sha256:<64 hex> or sha512:<128 hex>", ErrInvalid, n.ImageDigest)
		}
		if n.CommitSHA != "" {
			return fmt.Errorf("%w: an image scan has no commit", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: scan kind %q is not %q or %q", ErrInvalid, n.Kind, ci.KindCommit, ci.KindImage)
	}
	return nil
}

const scanCols = `id, project_id, kind, commit_sha, image_digest, image_ref, status, error, attempts,
	engine_versions, timings, result_key, created_at, started_at, finished_at, branch, rescan_of`

func scanScan(row interface{ Scan(...any) error }) (ci.Scan, error) {
	return scanScanWith(row)
}

// scanScanWith scans the scanCols of a row followed by the extra columns
// a query selected after them.
func scanScanWith(row interface{ Scan(...any) error }, extra ...any) (ci.Scan, error) {
	var (
		s               ci.Scan
		engines, timing string
	)
	err := row.Scan(append([]any{&s.ID, textCol{&s.ProjectID}, &s.Kind, textCol{&s.CommitSHA}, textCol{&s.ImageDigest},
		textCol{&s.ImageRef}, &s.Status, textCol{&s.Error}, &s.Attempts,
		textCol{&engines}, textCol{&timing}, textCol{&s.ResultKey},
		timeCol{&s.CreatedAt}, timeCol{&s.StartedAt}, timeCol{&s.FinishedAt},
		textCol{&s.Branch}, textCol{&s.RescanOf}}, extra...)...)
	if err != nil {
		return ci.Scan{}, err
	}
	if engines != "" {
		if err := json.Unmarshal([]byte(engines), &s.EngineVersions); err != nil {
			return ci.Scan{}, fmt.Errorf("store: scan %s: bad engine_versions: %w", s.ID, err)
		}
	}
	if timing != "" {
		if err := json.Unmarshal([]byte(timing), &s.Timings); err != nil {
			return ci.Scan{}, fmt.Errorf("store: scan %s: bad timings: %w", s.ID, err)
		}
	}
	return s, nil
}

// EnqueueScan records a queued scan of n, or finds the scan that exists
// for the same project and commit, or the same image digest. created
// reports whether this call made it. It is race-free: of any number of
// concurrent calls for one key, exactly one creates the scan and all
// return the same row.
//
// ErrInvalid if n is malformed, ErrNotFound if its project does not exist.
func (d *DB) EnqueueScan(ctx context.Context, n ci.NewScan) (scan ci.Scan, created bool, err error) {
	if err := validateNewScan(&n); err != nil {
		return ci.Scan{}, false, err
	}
	res, err := d.exec(ctx, `INSERT INTO scans
		(id, project_id, kind, commit_sha, image_digest, image_ref, status, attempts, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT DO NOTHING`,
		newID(), nullString(n.ProjectID), n.Kind, nullString(n.CommitSHA), nullString(n.ImageDigest),
		nullString(n.ImageRef), ci.ScanQueued, d.timeArg(now()))
	if isForeignKeyViolation(err) {
		return ci.Scan{}, false, fmt.Errorf("project %q: %w", n.ProjectID, ErrNotFound)
	}
	if err != nil {
		return ci.Scan{}, false, fmt.Errorf("store: enqueue scan: %w", err)
	}
	rows, err := res.RowsAffected()
	if err != nil {
		return ci.Scan{}, false, fmt.Errorf("store: enqueue scan: %w", err)
	}

	// Read the row back from the write pool: it has the newest state.
	var row *sql.Row
	if n.Kind == ci.KindCommit {
		row = d.writeRow(ctx, "SELECT "+scanCols+" FROM scans WHERE project_id = ? AND commit_sha = ? AND rescan_of IS NULL", n.ProjectID, n.CommitSHA)
	} else {
		row = d.writeRow(ctx, "SELECT "+scanCols+" FROM scans WHERE image_digest = ? AND rescan_of IS NULL", n.ImageDigest)
	}
	scan, err = scanScan(row)
	if err != nil {
		// ErrNoRows here would mean the row was deleted in between.
		return ci.Scan{}, false, fmt.Errorf("store: enqueue scan: read back: %w", err)
	}
	return scan, rows == 1, nil
}

// GetScan returns the scan with the ID, or ErrNotFound.
func (d *DB) GetScan(ctx context.Context, id string) (ci.Scan, error) {
	return getRow(ctx, d, "scan", id, scanScan, "SELECT "+scanCols+" FROM scans WHERE id = ?", id)
}

// ListScans returns scans newest first, one page at a time. next is the
// cursor of the following page, "" on the last page. The order is stable:
// scans created while paging appear on no later page, and none is seen
// twice. ErrInvalid if the cursor is malformed.
func (d *DB) ListScans(ctx context.Context, f ci.ScanFilter) (scans []ci.Scan, next string, err error) {
	limit := f.Limit
	if limit <= 0 {
		limit = ci.DefaultScanLimit
	}
	limit = min(limit, ci.MaxScanLimit)

	var (
		where []string
		args  []any
	)
	if f.ProjectID != "" {
		where = append(where, "project_id = ?")
		args = append(args, f.ProjectID)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "id < ?")
		args = append(args, after)
	}
	q := "SELECT " + scanCols + " FROM scans"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)

	scans, err = listRows(ctx, d, "scans", scanScan, q, args...)
	if err != nil {
		return nil, "", err
	}
	if len(scans) > limit {
		scans = scans[:limit]
		next = encodeCursor(scans[limit-1].ID)
	}
	return scans, next, nil
}

// Cursors are opaque to clients: the base64 of the last ID of a page.
func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		_, err = uuid.Parse(string(b))
	}
	if err != nil {
		return "", fmt.Errorf("%w: bad cursor", ErrInvalid)
	}
	return string(b), nil
}

// MarkRunning moves a queued, running (a retry) or failed (a retry) scan to
// running, counts the attempt and clears the previous error. ErrConflict if
// the scan succeeded already, ErrNotFound if there is no such scan.
func (d *DB) MarkRunning(ctx context.Context, id string) (ci.Scan, error) {
	return d.transition(ctx, id, ci.ScanRunning, []ci.ScanStatus{ci.ScanQueued, ci.ScanRunning, ci.ScanFailed},
		"status = ?, started_at = ?, finished_at = NULL, error = NULL, attempts = attempts + 1",
		ci.ScanRunning, d.timeArg(now()))
}

// RecordScanBranch records the branch of a first commit scan as the
// worker found it in the repository ("" for none found), replacing what
// was recorded before. Only a running scan's branch is written: a
// succeeded scan's findings were folded in with the branch it had.
// ErrNotFound if there is no such running commit scan.
func (d *DB) RecordScanBranch(ctx context.Context, id, branch string) error {
	res, err := d.exec(ctx, "UPDATE scans SET branch = ? WHERE id = ? AND kind = ? AND status = ? AND rescan_of IS NULL",
		nullString(strings.TrimSpace(branch)), id, ci.KindCommit, ci.ScanRunning)
	if err != nil {
		return fmt.Errorf("store: record branch of scan %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: record branch of scan %q: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("running first commit scan %q: %w", id, ErrNotFound)
	}
	return nil
}

// MarkSucceeded moves a running scan to succeeded with its result.
// ErrConflict if the scan is not running, ErrNotFound if there is no such
// scan.
func (d *DB) MarkSucceeded(ctx context.Context, id string, res ci.ScanResult) (ci.Scan, error) {
	engines, err := jsonText(res.EngineVersions)
	if err != nil {
		return ci.Scan{}, fmt.Errorf("store: mark scan %q succeeded: %w", id, err)
	}
	timings, err := jsonText(res.Timings)
	if err != nil {
		return ci.Scan{}, fmt.Errorf("store: mark scan %q succeeded: %w", id, err)
	}
	return d.transition(ctx, id, ci.ScanSucceeded, []ci.ScanStatus{ci.ScanRunning},
		"status = ?, finished_at = ?, error = NULL, result_key = ?, engine_versions = ?, timings = ?",
		ci.ScanSucceeded, d.timeArg(now()), nullString(res.ResultKey), engines, timings)
}

// MarkFailed moves a queued or running scan to failed. reason is shown to
// API users: it must say what went wrong without internal detail.
// ErrConflict if the scan is not queued or running, ErrNotFound if there is
// no such scan.
func (d *DB) MarkFailed(ctx context.Context, id, reason string) (ci.Scan, error) {
	if reason == "" {
		reason = "scan failed"
	}
	return d.transition(ctx, id, ci.ScanFailed, []ci.ScanStatus{ci.ScanQueued, ci.ScanRunning},
		"status = ?, finished_at = ?, error = ?",
		ci.ScanFailed, d.timeArg(now()), reason)
}

// transition updates the scan if its status is one of from, and returns
// the updated row.
func (d *DB) transition(ctx context.Context, id string, to ci.ScanStatus, from []ci.ScanStatus, set string, setArgs ...any) (ci.Scan, error) {
	in := strings.TrimSuffix(strings.Repeat("?, ", len(from)), ", ")
	args := append(setArgs, id)
	for _, s := range from {
		args = append(args, s)
	}
	s, err := scanScan(d.writeRow(ctx,
		"UPDATE scans SET "+set+" WHERE id = ? AND status IN ("+in+") RETURNING "+scanCols, args...))
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return ci.Scan{}, fmt.Errorf("store: mark scan %q %s: %w", id, to, err)
	}
	cur, err := d.GetScan(ctx, id)
	if err != nil {
		return ci.Scan{}, err
	}
	return ci.Scan{}, fmt.Errorf("%w: scan %q is %s and cannot become %s", ErrConflict, id, cur.Status, to)
}

// jsonText encodes a map as JSON text, nil as NULL.
func jsonText[M ~map[string]V, V any](m M) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// The store keeps the pipeline's records (package ci declares what it
// needs of it).
var (
	_ ci.Store     = (*DB)(nil)
	_ ci.ScanCache = (*ScanCache)(nil)
	_ ci.Blobs     = (*Blobs)(nil)
)
