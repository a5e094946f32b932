package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/reports/publish"
)

// Audit report bundles (migration 0017; package reports/publish declares
// what it needs): the record of each built bundle, its bytes being in the
// blob store, and the scans the gate history of a report is drawn from.

const bundleCols = `id, release_id, tenant_id, ticket_id, ticket, product_id, product, version, tenant_name,
	sha256, size, blob_key, key_id, files, created_at`

func scanBundle(row rowScanner) (publish.StoredBundle, error) {
	var (
		b     publish.StoredBundle
		files string
	)
	err := row.Scan(&b.ID, &b.ReleaseID, &b.TenantID, &b.TicketID, &b.Ticket, &b.ProductID, &b.ProductName, &b.Version,
		&b.TenantName, &b.SHA256, &b.Size, &b.BlobKey, &b.KeyID, &files, timeCol{&b.CreatedAt})
	if err != nil {
		return publish.StoredBundle{}, err
	}
	if err := json.Unmarshal([]byte(files), &b.Files); err != nil {
		return publish.StoredBundle{}, fmt.Errorf("store: bundle %s: bad files: %w", b.ID, err)
	}
	return b, nil
}

// CreateBundle stores the record of a built bundle with a new ID and
// creation time, and returns it. ErrConflict when the (release, tenant,
// ticket) has a bundle already; ErrNotFound when the release or the
// tenant does not exist; ErrInvalid for a record without a release, a
// tenant, a digest, a size, a blob key or a key ID.
func (d *DB) CreateBundle(ctx context.Context, b publish.StoredBundle) (publish.StoredBundle, error) {
	if b.ReleaseID == "" || b.TenantID == "" || b.SHA256 == "" || b.Size <= 0 || !ValidKey(b.BlobKey) || b.KeyID == "" {
		return publish.StoredBundle{}, fmt.Errorf("%w: a bundle needs a release, a tenant, a digest, a size, a blob key and a key ID", ErrInvalid)
	}
	files, err := json.Marshal(b.Files)
	if err != nil {
		return publish.StoredBundle{}, fmt.Errorf("store: create bundle: %w", err)
	}
	if b.Files == nil {
		files = []byte("[]")
	}
	b.ID, b.CreatedAt = newID(), now()
	_, err = d.exec(ctx, "INSERT INTO report_bundles ("+bundleCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		b.ID, b.ReleaseID, b.TenantID, b.TicketID, b.Ticket, b.ProductID, b.ProductName, b.Version, b.TenantName,
		b.SHA256, b.Size, b.BlobKey, b.KeyID, string(files), d.timeArg(b.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return publish.StoredBundle{}, fmt.Errorf("%w: release %s has a bundle for tenant %q and ticket %q already", ErrConflict, b.ReleaseID, b.TenantID, b.Ticket)
	case isForeignKeyViolation(err):
		return publish.StoredBundle{}, fmt.Errorf("release %q or tenant %q: %w", b.ReleaseID, b.TenantID, ErrNotFound)
	case err != nil:
		return publish.StoredBundle{}, fmt.Errorf("store: create bundle of release %s: %w", b.ReleaseID, err)
	}
	return b, nil
}

// GetBundle returns the bundle with the ID, or ErrNotFound.
func (d *DB) GetBundle(ctx context.Context, id string) (publish.StoredBundle, error) {
	return getRow(ctx, d, "bundle", id, scanBundle, "SELECT "+bundleCols+" FROM report_bundles WHERE id = ?", id)
}

// FindBundle returns the bundle of the release for the tenant and the
// ticket ("" for none), or ErrNotFound. It reads on the write pool, so
// that a bundle another call has just stored is found.
func (d *DB) FindBundle(ctx context.Context, releaseID, tenantID, ticketID string) (publish.StoredBundle, error) {
	b, err := scanBundle(d.writeRow(ctx, "SELECT "+bundleCols+" FROM report_bundles WHERE release_id = ? AND tenant_id = ? AND ticket_id = ?",
		releaseID, tenantID, ticketID))
	if errors.Is(err, sql.ErrNoRows) {
		return publish.StoredBundle{}, fmt.Errorf("bundle of release %q for tenant %q: %w", releaseID, tenantID, ErrNotFound)
	}
	if err != nil {
		return publish.StoredBundle{}, fmt.Errorf("store: find bundle of release %s: %w", releaseID, err)
	}
	return b, nil
}

// HistoryScans returns the scans of a target created in [q.From, q.To],
// oldest first: the commit scans of q.ProjectID, or the scans of the
// image digest q.Digest and of every image whose reference is in
// q.Repository (REPOSITORY, REPOSITORY:TAG or REPOSITORY@DIGEST). At most q.Limit
// (MaxHistoryScans when 0 or more), the newest of the window when there
// are more.
func (d *DB) HistoryScans(ctx context.Context, q publish.HistoryQuery) ([]ci.Scan, error) {
	limit := q.Limit
	if limit <= 0 || limit > publish.MaxHistoryScans {
		limit = publish.MaxHistoryScans
	}
	where := "created_at >= ? AND created_at <= ? AND "
	args := []any{d.timeArg(q.From), d.timeArg(q.To)}
	switch {
	case q.ProjectID != "":
		where += "project_id = ? AND kind = ?"
		args = append(args, q.ProjectID, ci.KindCommit)
	case q.Digest != "" && q.Repository != "":
		// A reference in the repository: the repository's name followed
		// by ':' (a tag) or '@' (a digest). Lengths are in characters,
		// as substr counts them in both dialects.
		n := utf8.RuneCountInString(q.Repository)
		where += "kind = ? AND (image_digest = ? OR image_ref = ? OR (substr(image_ref, 1, ?) = ? AND substr(image_ref, ?, 1) IN (':', '@')))"
		args = append(args, ci.KindImage, q.Digest, q.Repository, n, q.Repository, n+1)
	case q.Digest != "":
		where += "kind = ? AND image_digest = ?"
		args = append(args, ci.KindImage, q.Digest)
	default:
		return nil, fmt.Errorf("%w: a history names a project or an image digest", ErrInvalid)
	}
	scans, err := listRows(ctx, d, "history scans", func(r rowScanner) (ci.Scan, error) { return scanScan(r) },
		"SELECT "+scanCols+" FROM scans WHERE "+where+" ORDER BY created_at DESC, id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, err
	}
	slices.Reverse(scans)
	return scans, nil
}

// The store keeps the bundles of package reports/publish, and their bytes.
var (
	_ publish.Store = (*DB)(nil)
	_ publish.Blobs = (*Blobs)(nil)
)
