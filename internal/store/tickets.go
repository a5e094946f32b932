package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/reports"
)

// Support tickets: the tables of migration 0015. Package reports owns
// what goes in them (tickets.go); a ticket's change and the licensing
// webhook events announcing it are written in one transaction.

var _ reports.TicketStore = (*DB)(nil)

const ticketCols = "id, number, tenant_id, products, subject, message, status, created_by, created_at, updated_at, approved_release, contact"

func scanTicket(row rowScanner) (reports.Ticket, error) {
	var (
		t        reports.Ticket
		products string
	)
	err := row.Scan(&t.ID, &t.Number, &t.TenantID, &products, &t.Subject, &t.Message, &t.Status, &t.CreatedBy,
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}, textCol{&t.Release}, textCol{&t.Contact})
	t.Products = strings.Fields(products)
	return t, err
}

// InTicketTx runs fn in a write transaction, committed if fn returns nil
// and rolled back otherwise. The transaction writes licensing webhook
// events too (licensing.EventTx), which is how a ticket's change and its
// announcement commit together.
func (d *DB) InTicketTx(ctx context.Context, fn func(reports.TicketTx) error) error {
	return d.inLicensingTx(ctx, func(t *LicensingTx) error { return fn(ticketTx{t}) })
}

// ticketTx is a licensing transaction with the tickets' writes.
type ticketTx struct{ *LicensingTx }

// InsertTicket stores a new ticket with a new ID unless t.ID is set, and
// the next ticket number. An unknown tenant is ErrNotFound.
func (t ticketTx) InsertTicket(ctx context.Context, tk reports.Ticket) (reports.Ticket, error) {
	if tk.TenantID == "" || len(tk.Products) == 0 || tk.Status == "" {
		return reports.Ticket{}, fmt.Errorf("%w: a ticket needs a tenant, products and a status", ErrInvalid)
	}
	for _, p := range tk.Products {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return reports.Ticket{}, fmt.Errorf("%w: product %q", ErrInvalid, p)
		}
	}
	if tk.ID == "" {
		tk.ID = newID()
	}
	if tk.CreatedAt.IsZero() {
		tk.CreatedAt = now()
	}
	if tk.UpdatedAt.IsZero() {
		tk.UpdatedAt = tk.CreatedAt
	}
	// The one row of ticket_numbers, updated here, stays locked until the
	// transaction ends: numbers are given one transaction at a time.
	if err := t.queryRow(ctx, "UPDATE ticket_numbers SET last = last + 1 WHERE id = 1 RETURNING last").Scan(&tk.Number); err != nil {
		return reports.Ticket{}, fmt.Errorf("store: next ticket number: %w", err)
	}
	_, err := t.exec(ctx, "INSERT INTO tickets ("+ticketCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		tk.ID, tk.Number, tk.TenantID, strings.Join(tk.Products, " "), tk.Subject, tk.Message, tk.Status, tk.CreatedBy,
		t.d.timeArg(tk.CreatedAt), t.d.timeArg(tk.UpdatedAt), nullString(tk.Release), nullString(tk.Contact))
	switch {
	case isForeignKeyViolation(err):
		return reports.Ticket{}, fmt.Errorf("tenant %q: %w", tk.TenantID, ErrNotFound)
	case isUniqueViolation(err):
		return reports.Ticket{}, fmt.Errorf("%w: a ticket with id %q exists", ErrConflict, tk.ID)
	case err != nil:
		return reports.Ticket{}, fmt.Errorf("store: insert ticket: %w", err)
	}
	return tk, nil
}

// LockTicket reads the ticket and, on PostgreSQL, locks its row until the
// transaction ends (on SQLite the transaction holds the write lock).
func (t ticketTx) LockTicket(ctx context.Context, id string) (reports.Ticket, error) {
	tk, err := scanTicket(t.queryRow(ctx, "SELECT "+ticketCols+" FROM tickets WHERE id = ?"+t.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return reports.Ticket{}, fmt.Errorf("ticket %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return reports.Ticket{}, fmt.Errorf("store: lock ticket %q: %w", id, err)
	}
	return tk, nil
}

// UpdateTicket sets the ticket's status, release and updated_at.
func (t ticketTx) UpdateTicket(ctx context.Context, tk reports.Ticket) error {
	res, err := t.exec(ctx, "UPDATE tickets SET status = ?, approved_release = ?, updated_at = ? WHERE id = ?",
		tk.Status, nullString(tk.Release), t.d.timeArg(tk.UpdatedAt), tk.ID)
	changed, err := rowsChanged(res, err)
	if err != nil {
		return fmt.Errorf("store: update ticket %q: %w", tk.ID, err)
	}
	if !changed {
		return fmt.Errorf("ticket %q: %w", tk.ID, ErrNotFound)
	}
	return nil
}

// AppendTicketEvent adds the event to the ticket's history with the next
// sequence number. Its body must be a JSON object ("{}" when empty).
func (t ticketTx) AppendTicketEvent(ctx context.Context, ticketID string, e reports.TicketEvent) (reports.TicketEvent, error) {
	if e.Type == "" || e.Actor == "" {
		return reports.TicketEvent{}, fmt.Errorf("%w: a ticket event needs a type and an actor", ErrInvalid)
	}
	if len(e.Body) == 0 {
		e.Body = []byte("{}")
	}
	if e.At.IsZero() {
		e.At = now()
	}
	err := t.queryRow(ctx, "INSERT INTO ticket_events (ticket_id, seq, type, actor, body, at) "+
		"SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM ticket_events WHERE ticket_id = ? RETURNING seq",
		ticketID, e.Type, e.Actor, string(e.Body), t.d.timeArg(e.At), ticketID).Scan(&e.Seq)
	switch {
	case isForeignKeyViolation(err):
		return reports.TicketEvent{}, fmt.Errorf("ticket %q: %w", ticketID, ErrNotFound)
	case err != nil:
		return reports.TicketEvent{}, fmt.Errorf("store: append ticket event: %w", err)
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	return e, nil
}

// GetTicket returns the ticket or ErrNotFound.
func (d *DB) GetTicket(ctx context.Context, id string) (reports.Ticket, error) {
	return getRow(ctx, d, "ticket", id, scanTicket, "SELECT "+ticketCols+" FROM tickets WHERE id = ?", id)
}

// TicketByNumber returns the ticket with the number or ErrNotFound.
func (d *DB) TicketByNumber(ctx context.Context, number int64) (reports.Ticket, error) {
	return getRow(ctx, d, "ticket", strconv.FormatInt(number, 10), scanTicket, "SELECT "+ticketCols+" FROM tickets WHERE number = ?", number)
}

// ListTickets returns one page of the tickets of the query's tenant and
// status (every one for ""), oldest first, and the next page's cursor.
func (d *DB) ListTickets(ctx context.Context, q reports.TicketQuery) ([]reports.Ticket, string, error) {
	var (
		conds []string
		args  []any
	)
	if q.TenantID != "" {
		conds, args = append(conds, "tenant_id = ?"), append(args, q.TenantID)
	}
	if q.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, q.Status)
	}
	return listPage(ctx, d, "tickets", "tickets", ticketCols, scanTicket, func(t reports.Ticket) string { return t.ID },
		Page{Cursor: q.Cursor, Limit: q.Limit}, strings.Join(conds, " AND "), args...)
}

// TicketHistory returns the ticket's events, oldest first (none for an
// unknown ticket).
func (d *DB) TicketHistory(ctx context.Context, ticketID string) ([]reports.TicketEvent, error) {
	return listRows(ctx, d, "ticket events", func(row rowScanner) (reports.TicketEvent, error) {
		var (
			e    reports.TicketEvent
			body string
		)
		err := row.Scan(&e.Seq, &e.Type, &e.Actor, &body, timeCol{&e.At})
		e.Body = []byte(body)
		return e, err
	}, "SELECT seq, type, actor, body, at FROM ticket_events WHERE ticket_id = ? ORDER BY seq", ticketID)
}
