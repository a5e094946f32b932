package store

import (
	"context"
	"fmt"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/reports"
)

// Releases of products (migration 0014; package reports declares what it
// needs). A release's items name their scans, whose statuses are read
// with them: the release's status follows from those (reports.StoredRelease).

const releaseCols = "id, product_id, version, created_at"

func scanRelease(row rowScanner) (reports.StoredRelease, error) {
	var r reports.StoredRelease
	err := row.Scan(&r.ID, &r.ProductID, &r.Version, timeCol{&r.CreatedAt})
	return r, err
}

// CreateRelease stores the release and its items in one transaction,
// with a new ID and creation time, and returns it (its items' scan
// statuses are left as given). ErrConflict when the product has a release
// of the version; ErrNotFound when the product or a scan does not exist;
// ErrInvalid for a release without a product, a version or items.
func (d *DB) CreateRelease(ctx context.Context, r reports.StoredRelease) (reports.StoredRelease, error) {
	if r.ProductID == "" || r.Version == "" || len(r.Items) == 0 {
		return reports.StoredRelease{}, fmt.Errorf("%w: a release needs a product, a version and scans", ErrInvalid)
	}
	r.ID, r.CreatedAt = newID(), now()
	fail := func(err error) (reports.StoredRelease, error) {
		return reports.StoredRelease{}, fmt.Errorf("store: create release %s of product %q: %w", r.Version, r.ProductID, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, d.rebind("INSERT INTO releases (id, product_id, version, created_at) VALUES (?, ?, ?, ?)"),
		r.ID, r.ProductID, r.Version, d.timeArg(r.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return reports.StoredRelease{}, fmt.Errorf("%w: product %q has a release %s already; a release never changes: make a new version", ErrConflict, r.ProductID, r.Version)
	case isForeignKeyViolation(err):
		return reports.StoredRelease{}, fmt.Errorf("product %q: %w", r.ProductID, ErrNotFound)
	case err != nil:
		return fail(err)
	}
	for i, it := range r.Items {
		_, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO release_items (release_id, seq, kind, project, commit_sha, image_ref, image_digest, scan_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			r.ID, i, it.Kind, nullString(it.Project), nullString(it.Commit), nullString(it.ImageRef), nullString(it.Digest), it.ScanID)
		switch {
		case isForeignKeyViolation(err):
			return reports.StoredRelease{}, fmt.Errorf("scan %q: %w", it.ScanID, ErrNotFound)
		case err != nil:
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return r, nil
}

// GetRelease returns the release with the ID, with its items and their
// scans' statuses, or ErrNotFound.
func (d *DB) GetRelease(ctx context.Context, id string) (reports.StoredRelease, error) {
	r, err := getRow(ctx, d, "release", id, scanRelease, "SELECT "+releaseCols+" FROM releases WHERE id = ?", id)
	if err != nil {
		return reports.StoredRelease{}, err
	}
	rs := []reports.StoredRelease{r}
	return rs[0], d.withItems(ctx, rs)
}

// ListReleases returns one page of the product's releases, oldest first
// (see Page), with their items, and the cursor of the next page (""
// after the last).
func (d *DB) ListReleases(ctx context.Context, productID string, p reports.Page) ([]reports.StoredRelease, string, error) {
	rs, next, err := listPage(ctx, d, "releases", "releases", releaseCols, scanRelease,
		func(r reports.StoredRelease) string { return r.ID }, Page(p), "product_id = ?", productID)
	if err != nil {
		return nil, "", err
	}
	return rs, next, d.withItems(ctx, rs)
}

// LatestReadyRelease returns the newest release of the product whose
// scans have all succeeded, with its items, or ErrNotFound.
func (d *DB) LatestReadyRelease(ctx context.Context, productID string) (reports.StoredRelease, error) {
	r, err := getRow(ctx, d, "ready release of product", productID, scanRelease, "SELECT "+releaseCols+` FROM releases r
		WHERE product_id = ? AND NOT EXISTS (SELECT 1 FROM release_items i JOIN scans s ON s.id = i.scan_id
			WHERE i.release_id = r.id AND s.status <> ?)
		ORDER BY created_at DESC, id DESC LIMIT 1`, productID, ci.ScanSucceeded)
	if err != nil {
		return reports.StoredRelease{}, err
	}
	rs := []reports.StoredRelease{r}
	return rs[0], d.withItems(ctx, rs)
}

// withItems reads the items of the releases, with their scans' statuses
// and errors, in one query.
func (d *DB) withItems(ctx context.Context, rs []reports.StoredRelease) error {
	if len(rs) == 0 {
		return nil
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	in, args := inList(ids)
	type row struct {
		release string
		item    reports.ReleaseItem
	}
	scan := func(sc rowScanner) (row, error) {
		var r row
		err := sc.Scan(&r.release, &r.item.Kind, textCol{&r.item.Project}, textCol{&r.item.Commit}, textCol{&r.item.ImageRef},
			textCol{&r.item.Digest}, &r.item.ScanID, &r.item.ScanStatus, textCol{&r.item.ScanError})
		return r, err
	}
	rows, err := listRows(ctx, d, "release items", scan, `SELECT i.release_id, i.kind, i.project, i.commit_sha, i.image_ref, i.image_digest,
		i.scan_id, s.status, s.error FROM release_items i JOIN scans s ON s.id = i.scan_id
		WHERE i.release_id IN `+in+` ORDER BY i.release_id, i.seq`, args...)
	if err != nil {
		return err
	}
	items := map[string][]reports.ReleaseItem{}
	for _, r := range rows {
		items[r.release] = append(items[r.release], r.item)
	}
	for i := range rs {
		rs[i].Items = items[rs[i].ID]
	}
	return nil
}

// The store keeps the releases of package reports.
var _ reports.Store = (*DB)(nil)
