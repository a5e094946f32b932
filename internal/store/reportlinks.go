package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/reports"
)

// Secure links to report bundles: the tables of migration 0018. Package
// reports owns what goes in them (links.go); a link's change, the
// ticket's history and the tenant's webhook events are written in one
// transaction, a ticket's (ticketTx).

var (
	_ reports.LinkStore = (*DB)(nil)
	_ reports.LinkTx    = ticketTx{}
)

const linkCols = "id, token_hash, ticket_id, ticket_number, tenant_id, bundle_id, bundle_sha256, product_id, version, expires_at, " +
	"max_downloads, downloads, created_by, created_at, revoked_at, revoked_by, revoke_reason, expired_at, replaces, replaced_by"

func scanLink(row rowScanner) (reports.StoredLink, error) {
	var l reports.StoredLink
	err := row.Scan(&l.ID, &l.TokenHash, &l.TicketID, &l.TicketNumber, &l.TenantID, &l.BundleID, &l.BundleSHA256, &l.ProductID,
		&l.Version, timeCol{&l.ExpiresAt}, &l.MaxDownloads, &l.Downloads, &l.CreatedBy, timeCol{&l.CreatedAt},
		timeCol{&l.RevokedAt}, textCol{&l.RevokedBy}, textCol{&l.RevokeReason}, timeCol{&l.ExpiredAt},
		textCol{&l.Replaces}, textCol{&l.ReplacedBy})
	return l, err
}

const linkAccessCols = "id, link_id, created_at, kind, client_address, user_agent, range_header, counted, status, bytes"

func scanLinkAccess(row rowScanner) (reports.LinkAccess, error) {
	var a reports.LinkAccess
	err := row.Scan(&a.ID, &a.LinkID, timeCol{&a.At}, &a.Kind, &a.ClientAddress, &a.UserAgent, &a.Range, &a.Counted, &a.Status, &a.Bytes)
	return a, err
}

// InLinkTx runs fn in a write transaction, a ticket's (InTicketTx): the
// links' writes, the ticket's history and the licensing webhook events
// commit together.
func (d *DB) InLinkTx(ctx context.Context, fn func(reports.LinkTx) error) error {
	return d.inLicensingTx(ctx, func(t *LicensingTx) error { return fn(ticketTx{t}) })
}

// InsertLink stores a new link. A token hash in use is ErrConflict; an
// unknown ticket or tenant ErrNotFound.
func (t ticketTx) InsertLink(ctx context.Context, l reports.StoredLink) error {
	if l.ID == "" || l.TokenHash == "" || l.TicketID == "" || l.TenantID == "" || l.BundleID == "" || l.BundleSHA256 == "" || l.MaxDownloads < 1 {
		return fmt.Errorf("%w: a link needs an id, a token hash, a ticket, a tenant, a bundle and a download limit", ErrInvalid)
	}
	_, err := t.exec(ctx, "INSERT INTO report_links ("+linkCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		l.ID, l.TokenHash, l.TicketID, l.TicketNumber, l.TenantID, l.BundleID, l.BundleSHA256, l.ProductID, l.Version,
		t.d.timeArg(l.ExpiresAt), l.MaxDownloads, l.Downloads, l.CreatedBy, t.d.timeArg(l.CreatedAt),
		t.d.timeArg(l.RevokedAt), nullString(l.RevokedBy), nullString(l.RevokeReason), t.d.timeArg(l.ExpiredAt),
		nullString(l.Replaces), nullString(l.ReplacedBy))
	switch {
	case isForeignKeyViolation(err):
		return fmt.Errorf("ticket %q or tenant %q: %w", l.TicketID, l.TenantID, ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("%w: a link with this id or token exists", ErrConflict)
	case err != nil:
		return fmt.Errorf("store: insert link: %w", err)
	}
	return nil
}

// LockLink reads the link and, on PostgreSQL, locks its row until the
// transaction ends (on SQLite the transaction holds the write lock).
func (t ticketTx) LockLink(ctx context.Context, id string) (reports.StoredLink, error) {
	l, err := scanLink(t.queryRow(ctx, "SELECT "+linkCols+" FROM report_links WHERE id = ?"+t.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return reports.StoredLink{}, fmt.Errorf("link %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return reports.StoredLink{}, fmt.Errorf("store: lock link %q: %w", id, err)
	}
	return l, nil
}

// UpdateLink sets the link's downloads, revocation, recorded expiry and
// replacement: what changes of a link.
func (t ticketTx) UpdateLink(ctx context.Context, l reports.StoredLink) error {
	res, err := t.exec(ctx, "UPDATE report_links SET downloads = ?, revoked_at = ?, revoked_by = ?, revoke_reason = ?, expired_at = ?, replaced_by = ? WHERE id = ?",
		l.Downloads, t.d.timeArg(l.RevokedAt), nullString(l.RevokedBy), nullString(l.RevokeReason), t.d.timeArg(l.ExpiredAt),
		nullString(l.ReplacedBy), l.ID)
	changed, err := rowsChanged(res, err)
	if err != nil {
		return fmt.Errorf("store: update link %q: %w", l.ID, err)
	}
	if !changed {
		return fmt.Errorf("link %q: %w", l.ID, ErrNotFound)
	}
	return nil
}

// InsertLinkAccess adds an entry to the link's access log.
func (t ticketTx) InsertLinkAccess(ctx context.Context, a reports.LinkAccess) error {
	if a.ID == "" || a.LinkID == "" || (a.Kind != reports.AccessView && a.Kind != reports.AccessDownload) {
		return fmt.Errorf("%w: an access needs an id, a link and a kind (view or download)", ErrInvalid)
	}
	if a.At.IsZero() {
		a.At = now()
	}
	_, err := t.exec(ctx, "INSERT INTO report_link_access ("+linkAccessCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		a.ID, a.LinkID, t.d.timeArg(a.At), a.Kind, a.ClientAddress, a.UserAgent, a.Range, a.Counted, a.Status, a.Bytes)
	switch {
	case isForeignKeyViolation(err):
		return fmt.Errorf("link %q: %w", a.LinkID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: insert link access: %w", err)
	}
	return nil
}

// DownloadGranted reports whether the link served a download request
// (200 or 206) to the client address at or after since.
func (t ticketTx) DownloadGranted(ctx context.Context, linkID, clientAddress string, since time.Time) (bool, error) {
	var n int
	err := t.queryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM report_link_access WHERE link_id = ? AND client_address = ? AND kind = ? "+
		"AND created_at >= ? AND status IN (200, 206) LIMIT 1) g", linkID, clientAddress, reports.AccessDownload, t.d.timeArg(since)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: download grant of link %q: %w", linkID, err)
	}
	return n > 0, nil
}

// LinkByTokenHash returns the link whose token has the keyed hash, or
// ErrNotFound.
func (d *DB) LinkByTokenHash(ctx context.Context, tokenHash string) (reports.StoredLink, error) {
	l, err := scanLink(d.queryRow(ctx, "SELECT "+linkCols+" FROM report_links WHERE token_hash = ?", tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is not named: it is as good as the token to whoever
		// reads the error.
		return reports.StoredLink{}, fmt.Errorf("link: %w", ErrNotFound)
	}
	if err != nil {
		return reports.StoredLink{}, fmt.Errorf("store: find link: %w", err)
	}
	return l, nil
}

// GetLink returns the link or ErrNotFound.
func (d *DB) GetLink(ctx context.Context, id string) (reports.StoredLink, error) {
	return getRow(ctx, d, "link", id, scanLink, "SELECT "+linkCols+" FROM report_links WHERE id = ?", id)
}

// ListLinks returns one page of the links of a ticket or a tenant (every
// link when both are ""), oldest first, and the next page's cursor.
func (d *DB) ListLinks(ctx context.Context, q reports.StoredLinkQuery) ([]reports.StoredLink, string, error) {
	var (
		conds []string
		args  []any
	)
	if q.TicketID != "" {
		conds, args = append(conds, "ticket_id = ?"), append(args, q.TicketID)
	}
	if q.TenantID != "" {
		conds, args = append(conds, "tenant_id = ?"), append(args, q.TenantID)
	}
	return listPage(ctx, d, "links", "report_links", linkCols, scanLink, func(l reports.StoredLink) string { return l.ID },
		Page{Cursor: q.Cursor, Limit: q.Limit}, strings.Join(conds, " AND "), args...)
}

// ListLinkAccess returns one page of the link's access log, oldest first.
func (d *DB) ListLinkAccess(ctx context.Context, linkID string, p reports.Page) ([]reports.LinkAccess, string, error) {
	return listPage(ctx, d, "link access", "report_link_access", linkAccessCols, scanLinkAccess,
		func(a reports.LinkAccess) string { return a.ID }, Page{Cursor: p.Cursor, Limit: p.Limit}, "link_id = ?", linkID)
}

// DueLinks returns up to limit links whose expiry passed at or before
// now, not revoked, whose expiry is not recorded yet, soonest first.
func (d *DB) DueLinks(ctx context.Context, now time.Time, limit int) ([]reports.StoredLink, error) {
	return listRows(ctx, d, "due links", scanLink, "SELECT "+linkCols+" FROM report_links "+
		"WHERE revoked_at IS NULL AND expired_at IS NULL AND expires_at <= ? ORDER BY expires_at, id LIMIT ?", d.timeArg(now), limit)
}

// FinishLinkAccess sets the status and bytes of an access log entry.
func (d *DB) FinishLinkAccess(ctx context.Context, id string, status int, bytes int64) error {
	res, err := d.exec(ctx, "UPDATE report_link_access SET status = ?, bytes = ? WHERE id = ?", status, bytes, id)
	changed, err := rowsChanged(res, err)
	if err != nil {
		return fmt.Errorf("store: finish link access %q: %w", id, err)
	}
	if !changed {
		return fmt.Errorf("link access %q: %w", id, ErrNotFound)
	}
	return nil
}
