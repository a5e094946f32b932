package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/vigil-sec/vigil/ci"
)

// Findings tracked across commits, waivers and gate summaries (migration
// 0006).
//
// A project's findings are keyed by fingerprint. RecordFindings folds in
// what a first commit scan saw: first seen is the earliest scan that saw a
// finding, last seen the latest, and fixed in the earliest scan of the
// project's default branch, later than last seen, that no longer has it.
// "Earlier" and "later" are the order scans were created in (their IDs are
// UUIDv7), so the outcome does not depend on the order scans finish in.
// A scan that sees a finding after the scan that fixed it reopens it (the
// next default-branch scan without it fixes it again).

// MaxFindingMessage bounds the message kept for a tracked finding.
const MaxFindingMessage = 2000

const findingCols = `id, project_id, fingerprint, rule_id, severity, confidence, file, line, message, suppressed,
	first_scan_id, first_commit, first_seen_at, last_scan_id, last_commit, last_seen_at,
	fixed_scan_id, fixed_commit, fixed_at`

func scanFinding(row rowScanner) (ci.TrackedFinding, error) {
	var (
		f     ci.TrackedFinding
		fixed ci.Sighting
	)
	err := row.Scan(&f.ID, &f.ProjectID, &f.Fingerprint, &f.RuleID, &f.Severity, &f.Confidence, &f.File, &f.Line,
		&f.Message, &f.Suppressed,
		&f.First.ScanID, &f.First.Commit, timeCol{&f.First.At}, &f.Last.ScanID, &f.Last.Commit, timeCol{&f.Last.At},
		textCol{&fixed.ScanID}, textCol{&fixed.Commit}, timeCol{&fixed.At})
	if err != nil {
		return ci.TrackedFinding{}, err
	}
	if fixed.ScanID != "" {
		f.Fixed = &fixed
	}
	return f, nil
}

// RecordFindings folds the findings a succeeded first commit scan saw
// into its project's tracked findings (see the top of this file). It is
// idempotent: recording a scan again changes nothing. Findings without a
// fingerprint are skipped. ErrInvalid for an image scan or a rescan,
// ErrNotFound if there is no such scan.
func (d *DB) RecordFindings(ctx context.Context, scanID string, found []ci.ObservedFinding) error {
	sc, err := d.GetScan(ctx, scanID)
	if err != nil {
		return err
	}
	if sc.Kind != ci.KindCommit || sc.ProjectID == "" {
		return fmt.Errorf("%w: scan %s is not a commit scan of a project", ErrInvalid, scanID)
	}
	var branch, rescanOf, defaultBranch string
	err = d.writeRow(ctx, `SELECT s.branch, s.rescan_of, p.default_branch FROM scans s JOIN projects p ON p.id = s.project_id
		WHERE s.id = ?`, scanID).Scan(textCol{&branch}, textCol{&rescanOf}, &defaultBranch)
	if err != nil {
		return fmt.Errorf("store: record findings of scan %s: %w", scanID, err)
	}
	if rescanOf != "" {
		return fmt.Errorf("%w: scan %s is a rescan; findings are tracked from first scans", ErrInvalid, scanID)
	}

	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: record findings of scan %s: %w", scanID, err)
	}
	defer tx.Rollback()
	if d.dialect == Postgres {
		// One recorder per project at a time: the fix-marking below must
		// see every finding an earlier scan of the project inserted. (NO
		// KEY: inserts that reference the project, scans, go on.)
		if _, err := tx.ExecContext(ctx, d.rebind("SELECT id FROM projects WHERE id = ? FOR NO KEY UPDATE"), sc.ProjectID); err != nil {
			return fmt.Errorf("store: record findings of scan %s: %w", scanID, err)
		}
	}
	at := d.timeArg(sc.CreatedAt)
	upsert, err := tx.PrepareContext(ctx, d.rebind(`INSERT INTO findings (`+findingCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)
		ON CONFLICT (project_id, fingerprint) DO UPDATE SET
			first_scan_id = CASE WHEN excluded.first_scan_id < findings.first_scan_id THEN excluded.first_scan_id ELSE findings.first_scan_id END,
			first_commit  = CASE WHEN excluded.first_scan_id < findings.first_scan_id THEN excluded.first_commit ELSE findings.first_commit END,
			first_seen_at = CASE WHEN excluded.first_scan_id < findings.first_scan_id THEN excluded.first_seen_at ELSE findings.first_seen_at END,
			rule_id    = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.rule_id ELSE findings.rule_id END,
			severity   = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.severity ELSE findings.severity END,
			confidence = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.confidence ELSE findings.confidence END,
			file       = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.file ELSE findings.file END,
			line       = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.line ELSE findings.line END,
			message    = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.message ELSE findings.message END,
			suppressed = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.suppressed ELSE findings.suppressed END,
			last_commit   = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.last_commit ELSE findings.last_commit END,
			last_seen_at  = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.last_seen_at ELSE findings.last_seen_at END,
			last_scan_id  = CASE WHEN excluded.last_scan_id > findings.last_scan_id THEN excluded.last_scan_id ELSE findings.last_scan_id END`))
	if err != nil {
		return fmt.Errorf("store: record findings of scan %s: %w", scanID, err)
	}
	defer upsert.Close()
	seen := make(map[string]bool, len(found))
	for _, f := range found {
		if f.Fingerprint == "" || seen[f.Fingerprint] {
			continue
		}
		seen[f.Fingerprint] = true
		msg := f.Message
		if len(msg) > MaxFindingMessage {
			msg = truncateUTF8(msg, MaxFindingMessage)
		}
		_, err := upsert.ExecContext(ctx, newID(), sc.ProjectID, f.Fingerprint, f.RuleID, f.Severity, f.Confidence,
			f.File, f.Line, msg, f.Suppressed, scanID, sc.CommitSHA, at, scanID, sc.CommitSHA, at)
		if err != nil {
			return fmt.Errorf("store: record finding %s of scan %s: %w", f.Fingerprint, scanID, err)
		}
	}
	onDefault := defaultBranch != "" && branch == defaultBranch
	_, err = tx.ExecContext(ctx, d.rebind(`INSERT INTO recorded_scans (scan_id, project_id, commit_sha, created_at, on_default)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (scan_id) DO NOTHING`), scanID, sc.ProjectID, sc.CommitSHA, at, onDefault)
	if err != nil {
		return fmt.Errorf("store: record findings of scan %s: %w", scanID, err)
	}
	// Fixed in: the first recorded default-branch scan after the last
	// sighting. Recomputed for the whole project, so that neither the
	// order scans finish in nor a finding seen again (reopened) matters;
	// only rows whose answer changed are written.
	const fixedBy = `(SELECT %s FROM recorded_scans r WHERE r.project_id = findings.project_id AND r.on_default = ?
		AND r.scan_id > findings.last_scan_id ORDER BY r.scan_id LIMIT 1)`
	_, err = tx.ExecContext(ctx, d.rebind(`UPDATE findings SET
		fixed_scan_id = `+fmt.Sprintf(fixedBy, "r.scan_id")+`,
		fixed_commit = `+fmt.Sprintf(fixedBy, "r.commit_sha")+`,
		fixed_at = `+fmt.Sprintf(fixedBy, "r.created_at")+`
		WHERE project_id = ? AND fixed_scan_id IS DISTINCT FROM `+fmt.Sprintf(fixedBy, "r.scan_id")),
		true, true, true, sc.ProjectID, true)
	if err != nil {
		return fmt.Errorf("store: record fixes of scan %s: %w", scanID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: record findings of scan %s: %w", scanID, err)
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// ListFindings returns a project's tracked findings newest first (by when
// they were first recorded), one page at a time, paged like ListScans.
func (d *DB) ListFindings(ctx context.Context, f ci.FindingFilter) (findings []ci.TrackedFinding, next string, err error) {
	if f.ProjectID == "" {
		return nil, "", fmt.Errorf("%w: listing findings needs a project", ErrInvalid)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = ci.DefaultFindingLimit
	}
	limit = min(limit, ci.MaxFindingLimit)
	where := []string{"project_id = ?"}
	args := []any{f.ProjectID}
	if f.Fixed != nil {
		if *f.Fixed {
			where = append(where, "fixed_scan_id IS NOT NULL")
		} else {
			where = append(where, "fixed_scan_id IS NULL")
		}
	}
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "id < ?")
		args = append(args, after)
	}
	args = append(args, limit+1)
	findings, err = listRows(ctx, d, "findings", scanFinding,
		"SELECT "+findingCols+" FROM findings WHERE "+strings.Join(where, " AND ")+" ORDER BY id DESC LIMIT ?", args...)
	if err != nil {
		return nil, "", err
	}
	if len(findings) > limit {
		findings = findings[:limit]
		next = encodeCursor(findings[limit-1].ID)
	}
	return findings, next, nil
}

// FindingCursor is the cursor of the page that follows the finding, for
// callers that stop part way through a page.
func (d *DB) FindingCursor(id string) string { return encodeCursor(id) }

// MaxWaivers bounds the waivers of one project, expired ones included:
// every gate evaluation of the project reads them all.
const MaxWaivers = 1000

// dateLayout is how waiver expiry dates are stored.
const dateLayout = "2006-01-02"

const waiverCols = "id, project_id, rule, path, fingerprint, owner, reason, expires, created_by, created_at"

func scanWaiver(row rowScanner) (ci.ProjectWaiver, error) {
	var (
		w       ci.ProjectWaiver
		expires string
	)
	err := row.Scan(&w.ID, &w.ProjectID, &w.Rule, &w.Path, &w.Fingerprint, &w.Owner, &w.Reason, &expires,
		&w.CreatedBy, timeCol{&w.CreatedAt})
	if err != nil {
		return ci.ProjectWaiver{}, err
	}
	if w.Expires, err = time.Parse(dateLayout, expires); err != nil {
		return ci.ProjectWaiver{}, fmt.Errorf("store: waiver %s: bad stored expiry %q", w.ID, expires)
	}
	return w, nil
}

// CreateWaiver stores a waiver and returns it with its ID and creation
// time set. The caller validates its fields; the store checks only that
// it names a rule or a fingerprint, an owner, a reason and an expiry
// (ErrInvalid). ErrNotFound if the project does not exist, ErrConflict if
// it has MaxWaivers waivers already.
func (d *DB) CreateWaiver(ctx context.Context, w ci.ProjectWaiver) (ci.ProjectWaiver, error) {
	switch {
	case w.Rule == "" && w.Fingerprint == "":
		return ci.ProjectWaiver{}, fmt.Errorf("%w: a waiver needs a rule or a fingerprint", ErrInvalid)
	case w.Owner == "" || w.Reason == "" || w.Expires.IsZero():
		return ci.ProjectWaiver{}, fmt.Errorf("%w: a waiver needs an owner, a reason and an expiry", ErrInvalid)
	}
	w.ID = newID()
	w.CreatedAt = now()
	y, m, day := w.Expires.UTC().Date()
	w.Expires = time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	err := d.waiverTx(ctx, w.ProjectID, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, d.rebind("SELECT count(*) FROM waivers WHERE project_id = ?"), w.ProjectID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxWaivers {
			return fmt.Errorf("%w: project has %d waivers, the most it may have; delete expired ones first", ErrConflict, n)
		}
		_, err := tx.ExecContext(ctx, d.rebind("INSERT INTO waivers ("+waiverCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			w.ID, w.ProjectID, w.Rule, w.Path, w.Fingerprint, w.Owner, w.Reason, w.Expires.Format(dateLayout),
			w.CreatedBy, d.timeArg(w.CreatedAt))
		return err
	})
	if err != nil {
		return ci.ProjectWaiver{}, err
	}
	return w, nil
}

// DeleteWaiver deletes the waiver. ErrNotFound if there is no such waiver.
func (d *DB) DeleteWaiver(ctx context.Context, id string) error {
	w, err := d.GetWaiver(ctx, id)
	if err != nil {
		return err
	}
	return d.waiverTx(ctx, w.ProjectID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, d.rebind("DELETE FROM waivers WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("waiver %q: %w", id, ErrNotFound)
		}
		return nil
	})
}

// waiverTx runs fn in a transaction that also counts a change of the
// project's waivers in waiver_versions.
func (d *DB) waiverTx(ctx context.Context, projectID string, fn func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: waivers of project %q: %w", projectID, err)
	}
	defer tx.Rollback()
	// The version row is written first: on PostgreSQL its row lock
	// orders concurrent changes of one project's waivers.
	_, err = tx.ExecContext(ctx, d.rebind(`INSERT INTO waiver_versions (project_id, version) VALUES (?, 1)
		ON CONFLICT (project_id) DO UPDATE SET version = waiver_versions.version + 1`), projectID)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("project %q: %w", projectID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: waivers of project %q: %w", projectID, err)
	}
	if err := fn(tx); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("store: waivers of project %q: %w", projectID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: waivers of project %q: %w", projectID, err)
	}
	return nil
}

// GetWaiver returns the waiver with the ID, or ErrNotFound.
func (d *DB) GetWaiver(ctx context.Context, id string) (ci.ProjectWaiver, error) {
	return getRow(ctx, d, "waiver", id, scanWaiver, "SELECT "+waiverCols+" FROM waivers WHERE id = ?", id)
}

// ListWaivers returns every waiver of the project, expired ones included,
// oldest first.
func (d *DB) ListWaivers(ctx context.Context, projectID string) ([]ci.ProjectWaiver, error) {
	return listRows(ctx, d, "waivers", scanWaiver,
		"SELECT "+waiverCols+" FROM waivers WHERE project_id = ? ORDER BY id", projectID)
}

// GateState reads, in one indexed query, what a gate decision of the
// scan depends on. ErrNotFound if there is no such scan.
func (d *DB) GateState(ctx context.Context, scanID string) (ci.GateState, error) {
	g, err := d.scanGate(ctx, fmt.Sprintf("scan %q", scanID), "WHERE id = ?", scanID)
	return g.State, err
}

// PutGateSummary stores (or replaces) the gate summary of a scan: an
// opaque document of the server's. ErrNotFound if there is no such scan.
func (d *DB) PutGateSummary(ctx context.Context, scanID string, summary []byte) error {
	_, err := d.exec(ctx, `INSERT INTO gate_summaries (scan_id, summary) VALUES (?, ?)
		ON CONFLICT (scan_id) DO UPDATE SET summary = excluded.summary`, scanID, string(summary))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("scan %q: %w", scanID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: put gate summary of scan %q: %w", scanID, err)
	}
	return nil
}

// GetGateSummary returns the gate summary of a scan, or ErrNotFound.
func (d *DB) GetGateSummary(ctx context.Context, scanID string) ([]byte, error) {
	var s string
	err := d.queryRow(ctx, "SELECT summary FROM gate_summaries WHERE scan_id = ?", scanID).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("gate summary of scan %q: %w", scanID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get gate summary of scan %q: %w", scanID, err)
	}
	return []byte(s), nil
}

// scanGateQuery selects a scan with its GateState (the baseline on its
// project's default branch); the caller appends the WHERE clause. It has
// no join, and no bound value in a subquery: SQLite plans those anew at
// every execution of a prepared statement, which costs more than the
// query.
var scanGateQuery = "SELECT " + scanCols + `,
	(SELECT MAX(version) FROM policies WHERE project_id = s.project_id),
	(SELECT version FROM waiver_versions WHERE project_id = s.project_id),
	(SELECT b.id FROM scans b WHERE b.project_id = s.project_id AND b.status = 'succeeded'
		AND b.branch = (SELECT default_branch FROM projects WHERE id = s.project_id)
		AND b.commit_sha <> s.commit_sha ORDER BY b.id DESC LIMIT 1)
	FROM scans s `

func (d *DB) scanGate(ctx context.Context, what, where string, args ...any) (ci.ScanGate, error) {
	var (
		g                 ci.ScanGate
		policies, waivers sql.NullInt64
	)
	row, err := d.preparedRow(ctx, scanGateQuery+where, args...)
	if err == nil {
		g.Scan, err = scanScanWith(row, &policies, &waivers, textCol{&g.State.BaselineScanID})
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ci.ScanGate{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return ci.ScanGate{}, fmt.Errorf("store: %s: %w", what, err)
	}
	g.State.Branch = g.Scan.Branch
	g.State.PolicyVersion, g.State.WaiverVersion = int(policies.Int64), waivers.Int64
	return g, nil
}

// CommitScanGate is the ScanGate of the first scan (not a rescan) of the
// commit of the project with the name, in two indexed reads. ErrNotFound
// when there is no such project or no such scan.
func (d *DB) CommitScanGate(ctx context.Context, projectName, commit string) (ci.ScanGate, error) {
	row, err := d.preparedRow(ctx, "SELECT "+projectCols+" FROM projects WHERE name = ?", projectName)
	var p ci.Project
	if err == nil {
		p, err = scanProject(row)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ci.ScanGate{}, fmt.Errorf("project %q: %w", projectName, ErrNotFound)
	}
	if err != nil {
		return ci.ScanGate{}, fmt.Errorf("store: get project %q: %w", projectName, err)
	}
	commit = strings.ToLower(strings.TrimSpace(commit))
	g, err := d.scanGate(ctx, "scan of commit "+commit,
		"WHERE project_id = ? AND commit_sha = ? AND rescan_of IS NULL", p.ID, commit)
	g.Project = p
	return g, err
}

// ImageScanGate is the ScanGate of the first scan of the image digest, or
// ErrNotFound.
func (d *DB) ImageScanGate(ctx context.Context, digest string) (ci.ScanGate, error) {
	digest = strings.TrimSpace(digest)
	return d.scanGate(ctx, "scan of image "+digest, "WHERE image_digest = ? AND rescan_of IS NULL", digest)
}

// ImageRefScanGate is the ScanGate of the newest first scan of an image
// recorded with the reference, or ErrNotFound.
func (d *DB) ImageRefScanGate(ctx context.Context, ref string) (ci.ScanGate, error) {
	return d.scanGate(ctx, "scan of image "+ref, "WHERE image_ref = ? AND kind = 'image' AND rescan_of IS NULL ORDER BY s.id DESC LIMIT 1", ref)
}

// Prepared statements of the gate's hot queries on SQLite, whose driver
// parses and plans every query it is given anew (most of the cost of a
// one-row read); pgx caches prepared statements by itself. They are kept
// per DB without keeping it alive, and closed once it is collected.
type stmtKey struct {
	db weak.Pointer[DB]
	q  string
}

var stmts sync.Map // stmtKey → *sql.Stmt

// preparedRow runs a one-row query on the read pool, through a prepared
// statement on SQLite.
func (d *DB) preparedRow(ctx context.Context, q string, args ...any) (*sql.Row, error) {
	if d.dialect != SQLite {
		return d.queryRow(ctx, q, args...), nil
	}
	k := stmtKey{weak.Make(d), q}
	if st, ok := stmts.Load(k); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...), nil
	}
	st, err := d.read.PrepareContext(ctx, d.rebind(q))
	if err != nil {
		return nil, err
	}
	if old, loaded := stmts.LoadOrStore(k, st); loaded {
		st.Close()
		st = old.(*sql.Stmt)
	} else {
		runtime.AddCleanup(d, func(k stmtKey) {
			if st, ok := stmts.LoadAndDelete(k); ok {
				st.(*sql.Stmt).Close()
			}
		}, k)
	}
	return st.QueryRowContext(ctx, args...), nil
}

// ListWaiverPage returns one page of the project's waivers, expired ones
// included, oldest first (see Page), and the cursor of the next page (""
// after the last).
func (d *DB) ListWaiverPage(ctx context.Context, projectID string, p ci.Page) ([]ci.ProjectWaiver, string, error) {
	return listPage(ctx, d, "waivers", "waivers", waiverCols, scanWaiver,
		func(w ci.ProjectWaiver) string { return w.ID }, Page(p), "project_id = ?", projectID)
}
