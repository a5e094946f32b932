package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/reports"
)

// Report schedules (migration 0020; package reports, schedules.go): a
// product's releases cut on a cron schedule, and the image scans they
// take.

var _ reports.ScheduleStore = (*DB)(nil)

const reportScheduleCols = "product_id, spec, image_window_days, image_repositories, updated_at"

func scanReportSchedule(row rowScanner) (reports.ReportSchedule, error) {
	var (
		s     reports.ReportSchedule
		repos string
	)
	err := row.Scan(&s.ProductID, &s.Spec, &s.ImageWindowDays, &repos, timeCol{&s.UpdatedAt})
	s.ImageRepositories = strings.Fields(repos)
	return s, err
}

// ReportSchedule returns the product's schedule, or ErrNotFound when it
// has none.
func (d *DB) ReportSchedule(ctx context.Context, productID string) (reports.ReportSchedule, error) {
	return getRow(ctx, d, "report schedule of product", productID, scanReportSchedule,
		"SELECT "+reportScheduleCols+" FROM report_schedules WHERE product_id = ?", productID)
}

// PutReportSchedule stores the product's schedule, replacing the one it
// had; ErrNotFound for an unknown product, ErrInvalid for a repository
// with a space or a window the table refuses.
func (d *DB) PutReportSchedule(ctx context.Context, s reports.ReportSchedule) (reports.ReportSchedule, error) {
	for _, r := range s.ImageRepositories {
		if r == "" || strings.ContainsAny(r, " \t\r\n") {
			return reports.ReportSchedule{}, fmt.Errorf("%w: image repository %q", ErrInvalid, r)
		}
	}
	if s.ImageWindowDays < 1 || s.ImageWindowDays > reports.MaxImageWindowDays {
		return reports.ReportSchedule{}, fmt.Errorf("%w: image window of %d days", ErrInvalid, s.ImageWindowDays)
	}
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = now()
	}
	_, err := d.exec(ctx, "INSERT INTO report_schedules ("+reportScheduleCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (product_id) DO UPDATE SET spec = excluded.spec, image_window_days = excluded.image_window_days,
		image_repositories = excluded.image_repositories, updated_at = excluded.updated_at`,
		s.ProductID, s.Spec, s.ImageWindowDays, strings.Join(s.ImageRepositories, " "), d.timeArg(s.UpdatedAt))
	switch {
	case isForeignKeyViolation(err):
		return reports.ReportSchedule{}, fmt.Errorf("product %q: %w", s.ProductID, ErrNotFound)
	case err != nil:
		return reports.ReportSchedule{}, fmt.Errorf("store: put report schedule of %q: %w", s.ProductID, err)
	}
	s.UpdatedAt = s.UpdatedAt.UTC().Truncate(time.Microsecond)
	if s.ImageRepositories == nil {
		s.ImageRepositories = []string{}
	}
	return s, nil
}

// ListReportSchedules returns the schedules with a spec, by product.
func (d *DB) ListReportSchedules(ctx context.Context) ([]reports.ReportSchedule, error) {
	return listRows(ctx, d, "report schedules", scanReportSchedule,
		"SELECT "+reportScheduleCols+" FROM report_schedules WHERE spec <> '' ORDER BY product_id")
}

// ReleaseImageScans returns the first scans of image digests recorded in
// [since, until] for one of the projects or whose reference is in one of
// the repositories ("repo", "repo:tag", "repo@sha256:…"), newest first,
// at most ci.MaxScanLimit.
func (d *DB) ReleaseImageScans(ctx context.Context, projectIDs, repositories []string, since, until time.Time) ([]ci.Scan, error) {
	var (
		conds []string
		args  = []any{d.timeArg(since), d.timeArg(until)}
	)
	if len(projectIDs) > 0 {
		conds = append(conds, "project_id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(projectIDs)), ", ")+")")
		for _, id := range projectIDs {
			args = append(args, id)
		}
	}
	for _, r := range repositories {
		// Compared as text prefixes, so no character of the name is a
		// pattern (as '_' would be to LIKE).
		conds = append(conds, "image_ref = ? OR substr(image_ref, 1, ?) = ? OR substr(image_ref, 1, ?) = ?")
		args = append(args, r, len(r)+1, r+":", len(r)+1, r+"@")
	}
	if len(conds) == 0 {
		return nil, nil
	}
	// kind and rescan_of as literals: the partial index of migration
	// 0020 (scans_image_first_created) applies.
	return listRows(ctx, d, "release image scans", scanScan, "SELECT "+scanCols+` FROM scans
		WHERE kind = 'image' AND rescan_of IS NULL AND created_at >= ? AND created_at <= ? AND (`+strings.Join(conds, " OR ")+`)
		ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, ci.MaxScanLimit)...)
}
