package reports

// Support tickets: how a customer (a licensing tenant) asks for the
// latest audit report of products it is entitled to, and how the
// vendor's staff answer.
//
// A ticket names a tenant, one or more products, a subject and a message.
// Customers open tickets through the Management API with an OAuth client
// bound to their tenant (an Actor with a TenantID), which sees only that
// tenant's tickets; staff (Actor.Staff) open them on a tenant's behalf,
// and list, read, comment on, approve and reject every ticket. A product
// the tenant holds no active entitlement to cannot be granted: opening a
// ticket for it, or approving one, is refused with a *NotEntitledError
// naming it.
//
// Every change is an event of the ticket's history (TicketEvent: who did
// it, when, and what it said), written in the transaction of the change
// with a Standard Webhooks event for the tenant's licensing webhook
// endpoints (ticket.opened, ticket.commented, ticket.approved,
// ticket.rejected; licensing.Outbox), so that the history and the
// announcements never disagree.
//
// Approval records the decision (and the release asked for, if any);
// what follows (building the signed bundle and the secure link) is the
// Fulfiller's, the extension point of TicketConfig.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// Statuses of a ticket: open until approved or rejected, once.
const (
	TicketOpen     = "open"
	TicketApproved = "approved"
	TicketRejected = "rejected"
)

// TicketStatuses lists the statuses, for validation and help texts.
var TicketStatuses = []string{TicketOpen, TicketApproved, TicketRejected}

// Types of the events of a ticket's history. The secure links add their
// own (link created, viewed, downloaded, revoked, expired).
const (
	EventOpened    = "opened"
	EventCommented = "commented"
	EventApproved  = "approved"
	EventRejected  = "rejected"
)

// SystemActor is the actor of the changes Vigil makes itself: an
// approval by the auto-approval policy.
const SystemActor = "system"

// Auto-approval policies (TicketConfig.AutoApprove).
const (
	// AutoApproveOff: staff approve every ticket.
	AutoApproveOff = "off"
	// AutoApproveEntitled: a ticket whose tenant holds an active
	// entitlement to every product it asks for is approved as it opens.
	AutoApproveEntitled = "entitled"
)

// Limits on ticket input. Lengths are in characters (runes).
const (
	MaxSubject  = 200
	MaxMessage  = 10000
	MaxReason   = 2000
	MaxProducts = 20
	// MaxRelease is the longest release name, in bytes.
	MaxRelease = 200
	// maxProductID is the longest product ID, in bytes (as licensing's);
	// maxTenantID the longest tenant ID.
	maxProductID = 128
	maxTenantID  = 200
	// maxTicketNumber keeps a ticket number a short string of digits.
	maxTicketNumber = 1_000_000_000_000_000
)

// Limits of TicketQuery.Limit.
const (
	DefaultTicketsPage = 100
	MaxTicketsPage     = 1000
)

// Ticket is a support ticket as the API shows it.
type Ticket struct {
	ID string `json:"id"`
	// Number is the short, sequential number people use ("ticket 42"),
	// unique in the installation.
	Number    int64     `json:"number"`
	TenantID  string    `json:"tenant_id"`
	Products  []string  `json:"products"` // sorted
	Subject   string    `json:"subject"`
	Message   string    `json:"message"`
	Status    string    `json:"status"`
	Release   string    `json:"release,omitempty"` // asked for by the approval; "" for the latest
	CreatedBy string    `json:"created_by"`        // the OAuth client that opened it
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Contact is the requester's e-mail address, "" for none: where the
	// secure link is mailed when the server sends mail (contact.go).
	Contact string `json:"contact,omitempty"`
}

// TicketEvent is one change of a ticket's history.
type TicketEvent struct {
	Seq   int    `json:"seq"` // 1, 2, … in the ticket
	Type  string `json:"type"`
	Actor string `json:"actor"` // the OAuth client's ID, or SystemActor
	// Body is a JSON object: what the change said (message, reason,
	// release, policy).
	Body json.RawMessage `json:"body"`
	At   time.Time       `json:"at"`
}

// TicketDetail is a ticket with its history, oldest event first.
type TicketDetail struct {
	Ticket
	History []TicketEvent `json:"history"`
	// Links are the secure links the approval answered with, each with
	// its token: set only in the answer of the approval (by staff, or by
	// the auto-approval policy when the ticket was opened) that made
	// them. Tokens are never shown again.
	Links []IssuedLink `json:"links,omitempty"`
	// LinkError says why the approval made no secure link (a product
	// without a ready release, say); the approval stands, and staff make
	// the link once the cause is fixed (POST /api/v1/releases/{id}/bundles
	// and a reissue, or vigil bundles build).
	LinkError string `json:"link_error,omitempty"`
}

// IssuedLink is a secure link made for an approved ticket, with its
// token and its URL (with a public URL configured): shown once.
type IssuedLink struct {
	Link
	Token string `json:"token"`
	URL   string `json:"url,omitempty"`
}

// eventBody is the body of the events this file writes.
type eventBody struct {
	Message string `json:"message,omitempty"` // commented
	Reason  string `json:"reason,omitempty"`  // rejected
	Release string `json:"release,omitempty"` // approved
	Policy  string `json:"policy,omitempty"`  // approved by the auto-approval policy
}

// webhookTypes are the Standard Webhooks event types of the history's
// events.
var webhookTypes = map[string]string{
	EventOpened:    webhooks.EventTicketOpened,
	EventCommented: webhooks.EventTicketCommented,
	EventApproved:  webhooks.EventTicketApproved,
	EventRejected:  webhooks.EventTicketRejected,
}

// Actor is who asks: a client of the Management API.
type Actor struct {
	// ClientID is the OAuth client; it is the actor of the changes it
	// makes.
	ClientID string
	// TenantID is the tenant the client is bound to: it acts for that
	// tenant alone, whatever else it holds. "" for a client bound to none.
	TenantID string
	// Staff may act on every tenant's tickets (scope tickets:admin); it
	// counts only for a client bound to no tenant.
	Staff bool
}

func (a Actor) bound() bool { return a.TenantID != "" }
func (a Actor) staff() bool { return a.Staff && !a.bound() }

// errUnbound refuses a customer's call from a client bound to no tenant.
var errUnbound = fmt.Errorf("%w: this client is bound to no tenant: tickets:write acts for the tenant its client is bound to "+
	"(vigil clients create --tenant); staff need tickets:admin", ErrForbidden)

// errNotStaff refuses staff's calls to others.
var errNotStaff = fmt.Errorf("%w: only staff (tickets:admin, a client bound to no tenant) may do this", ErrForbidden)

// NewTicket is the input of Open.
type NewTicket struct {
	// TenantID is required of staff; a client bound to a tenant opens
	// tickets for that tenant ("" or its own).
	TenantID string
	Products []string
	Subject  string
	Message  string
	// Contact is the requester's e-mail address (optional): one address,
	// checked by CheckContact.
	Contact string
}

// TicketQuery selects a page of tickets, oldest first.
type TicketQuery struct {
	TenantID string // "" for every tenant (staff only)
	Status   string // "" for every status
	// Cursor is the next_cursor of the previous page ("" for the first);
	// Limit is at most MaxTicketsPage, 0 for DefaultTicketsPage.
	Cursor string
	Limit  int
}

// NotEntitledError refuses a ticket, or its approval, for products the
// tenant holds no active entitlement to. It is an ErrConflict: the
// tenant's entitlements, not the request, stand in the way.
type NotEntitledError struct {
	TenantID string
	Products []string
}

func (e *NotEntitledError) Error() string {
	what := "product " + strconv.Quote(e.Products[0])
	if len(e.Products) > 1 {
		q := make([]string, len(e.Products))
		for i, p := range e.Products {
			q[i] = strconv.Quote(p)
		}
		what = "products " + strings.Join(q, ", ")
	}
	return fmt.Sprintf("tenant %q holds no active entitlement to %s: its report cannot be granted", e.TenantID, what)
}

// Is makes a NotEntitledError an ErrConflict.
func (e *NotEntitledError) Is(target error) bool { return target == ErrConflict }

// TicketStore is what the TicketService needs from its database;
// internal/store implements it. Reads of a missing ticket return an
// error that wraps ErrNotFound.
type TicketStore interface {
	// InTicketTx runs fn in a write transaction, committed if fn returns
	// nil and rolled back otherwise.
	InTicketTx(ctx context.Context, fn func(TicketTx) error) error
	GetTicket(ctx context.Context, id string) (Ticket, error)
	TicketByNumber(ctx context.Context, number int64) (Ticket, error)
	// ListTickets returns one page of the tickets q selects, oldest
	// first, and the cursor of the next page ("" on the last). A bad
	// cursor or limit is ErrInvalid.
	ListTickets(ctx context.Context, q TicketQuery) ([]Ticket, string, error)
	// TicketHistory returns the ticket's events, oldest first.
	TicketHistory(ctx context.Context, ticketID string) ([]TicketEvent, error)
}

// TicketTx is a write transaction over the tickets (Store.InTicketTx). It
// writes the licensing webhook events of the changes too (EventTx).
type TicketTx interface {
	licensing.EventTx
	// InsertTicket stores a new ticket with the next ticket number and
	// returns it; its tenant must exist.
	InsertTicket(ctx context.Context, t Ticket) (Ticket, error)
	// LockTicket reads the ticket and locks it until the transaction
	// ends, so that its changes happen one at a time.
	LockTicket(ctx context.Context, id string) (Ticket, error)
	// UpdateTicket sets the ticket's status, release and updated_at.
	UpdateTicket(ctx context.Context, t Ticket) error
	// AppendTicketEvent adds e to the ticket's history with the next
	// sequence number, and returns it.
	AppendTicketEvent(ctx context.Context, ticketID string, e TicketEvent) (TicketEvent, error)
}

// Fulfiller answers an approved ticket: it builds or reuses the signed
// bundle of the approved release (Ticket.Release, the latest ready one
// when "") of each of the ticket's products for its tenant, makes a
// secure link to each (recorded and announced in the ticket's history),
// and returns the links with their tokens. The TicketService calls it
// once an approval, by staff (the approver is a) or by the auto-approval
// policy (a is the SystemActor), has committed; on an error the approval
// stands, the links made so far are returned, and the error is logged
// and said in the answer (TicketDetail.LinkError).
type Fulfiller interface {
	Fulfill(ctx context.Context, a Actor, t Ticket) ([]IssuedLink, error)
}

// TicketConfig configures a TicketService. Zero fields mean defaults.
type TicketConfig struct {
	// AutoApprove is the auto-approval policy: AutoApproveOff (or "")
	// or AutoApproveEntitled.
	AutoApprove string
	// Fulfiller answers approved tickets; nil: approval only records the
	// decision.
	Fulfiller Fulfiller
	// Logger receives the service's messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// CheckAutoApprove checks an auto-approval policy ("" is off).
func CheckAutoApprove(policy string) error {
	switch policy {
	case "", AutoApproveOff, AutoApproveEntitled:
		return nil
	}
	return fmt.Errorf("auto-approval policy %q: want %s or %s", policy, AutoApproveEntitled, AutoApproveOff)
}

// TicketService opens, reads and decides support tickets. It is safe for
// concurrent use.
type TicketService struct {
	db  TicketStore
	lic *licensing.Service
	cfg TicketConfig
	log *slog.Logger
	now func() time.Time
}

// NewTicketService returns the service on db, a migrated database
// (internal/store's DB implements TicketStore), with lic for the
// tenants, products and entitlements, and for the webhooks.
func NewTicketService(db TicketStore, lic *licensing.Service, cfg TicketConfig) (*TicketService, error) {
	if err := CheckAutoApprove(cfg.AutoApprove); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	s := &TicketService{db: db, lic: lic, cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Open opens a ticket and returns it with its history. A client bound to
// a tenant opens it for that tenant; staff name the tenant. With the
// AutoApproveEntitled policy the ticket is approved at once. Errors wrap
// ErrInvalid for bad input (an unknown product or tenant named by staff
// among it), ErrForbidden for a client that is neither, and are a
// *NotEntitledError for products the tenant holds no active entitlement
// to (unknown ones too, for a tenant's client, which does not learn which
// products exist).
func (s *TicketService) Open(ctx context.Context, a Actor, nt NewTicket) (TicketDetail, error) {
	switch {
	case a.bound() && nt.TenantID != "" && nt.TenantID != a.TenantID:
		return TicketDetail{}, fmt.Errorf("%w: tenant_id: a client bound to a tenant opens tickets for its own tenant only", ErrInvalid)
	case a.bound():
		nt.TenantID = a.TenantID
	case !a.staff():
		return TicketDetail{}, errUnbound
	case strings.TrimSpace(nt.TenantID) == "":
		return TicketDetail{}, fmt.Errorf("%w: tenant_id is required: the tenant the ticket is for", ErrInvalid)
	}
	t, err := checkNewTicket(nt)
	if err != nil {
		return TicketDetail{}, err
	}
	if !a.bound() { // staff are told what does not exist
		if err := s.checkExist(ctx, t); err != nil {
			return TicketDetail{}, err
		}
	}
	missing, err := s.unentitled(ctx, t.TenantID, t.Products) // unknown products too
	if err != nil {
		return TicketDetail{}, err
	}
	if len(missing) > 0 {
		return TicketDetail{}, &NotEntitledError{TenantID: t.TenantID, Products: missing}
	}

	now := s.now().UTC()
	t.Status, t.CreatedBy, t.CreatedAt, t.UpdatedAt = TicketOpen, a.ClientID, now, now
	// Every product is entitled here: the policy approves the ticket.
	auto := s.cfg.AutoApprove == AutoApproveEntitled
	var d TicketDetail
	out := s.lic.Outbox()
	err = s.db.InTicketTx(ctx, func(tx TicketTx) error {
		var err error
		if t, err = tx.InsertTicket(ctx, t); err != nil {
			return err
		}
		d = TicketDetail{Ticket: t}
		if err := s.record(ctx, tx, out, &d, EventOpened, a.ClientID, eventBody{}, now); err != nil {
			return err
		}
		if !auto {
			return nil
		}
		d.Status = TicketApproved
		if err := tx.UpdateTicket(ctx, d.Ticket); err != nil {
			return err
		}
		return s.record(ctx, tx, out, &d, EventApproved, SystemActor, eventBody{Policy: AutoApproveEntitled}, now)
	})
	if err != nil {
		return TicketDetail{}, fmt.Errorf("reports: open ticket: %w", err)
	}
	out.Queue(ctx)
	s.log.InfoContext(ctx, "ticket opened", slog.Int64("number", d.Number), slog.String("ticket_id", d.ID),
		slog.String("tenant_id", d.TenantID), slog.String("by", a.ClientID), slog.Bool("auto_approved", auto))
	if auto {
		s.fulfill(ctx, Actor{ClientID: SystemActor, Staff: true}, &d)
	}
	return d, nil
}

// checkExist refuses a ticket for a tenant or products that do not exist.
func (s *TicketService) checkExist(ctx context.Context, t Ticket) error {
	_, err := s.lic.GetTenant(ctx, t.TenantID)
	if errors.Is(err, licensing.ErrNotFound) {
		return fmt.Errorf("%w: tenant_id %q: no such tenant", ErrInvalid, t.TenantID)
	}
	if err != nil {
		return fmt.Errorf("reports: open ticket: %w", err)
	}
	for _, p := range t.Products {
		_, err := s.lic.GetProduct(ctx, p)
		if errors.Is(err, licensing.ErrNotFound) {
			return fmt.Errorf("%w: products: %q: no such product", ErrInvalid, p)
		}
		if err != nil {
			return fmt.Errorf("reports: open ticket: %w", err)
		}
	}
	return nil
}

// checkNewTicket checks and normalises the ticket's text and products.
func checkNewTicket(nt NewTicket) (Ticket, error) {
	subject, err := checkText("subject", nt.Subject, MaxSubject, false)
	if err != nil {
		return Ticket{}, err
	}
	message, err := checkText("message", nt.Message, MaxMessage, true)
	if err != nil {
		return Ticket{}, err
	}
	if err := httpx.CheckIdentifier("tenant_id", nt.TenantID, maxTenantID); err != nil {
		return Ticket{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	products, err := checkProducts(nt.Products)
	if err != nil {
		return Ticket{}, err
	}
	contact, err := CheckContact(nt.Contact)
	if err != nil {
		return Ticket{}, err
	}
	return Ticket{TenantID: nt.TenantID, Products: products, Subject: subject, Message: message, Contact: contact}, nil
}

// checkProducts checks the product IDs and returns them sorted, without
// duplicates.
func checkProducts(ps []string) ([]string, error) {
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: products: name at least one product", ErrInvalid)
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if err := httpx.CheckIdentifier("products", p, maxProductID); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if p == "" || strings.ContainsFunc(p, unicode.IsSpace) {
			return nil, fmt.Errorf("%w: products: %q is not a product ID", ErrInvalid, p)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxProducts {
		return nil, fmt.Errorf("%w: products: at most %d", ErrInvalid, MaxProducts)
	}
	return out, nil
}

// checkText trims and checks free text: 1 to max characters of valid
// UTF-8, without control characters (but newlines and tabs when
// multiline), line or paragraph separators, or the bidirectional controls
// that make text display other than it reads. CRLF becomes LF.
func checkText(field, s string, max int, multiline bool) (string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
	}
	if multiline {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", bad("not valid UTF-8")
	}
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return "", bad("is required")
	case n > max:
		return "", bad("at most %d characters, not %d", max, n)
	}
	for i, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t'):
		case unicode.IsControl(r), unicode.In(r, unicode.Zl, unicode.Zp), unicode.Is(unicode.Bidi_Control, r):
			return "", bad("must not contain control characters (%U at byte %d)", r, i)
		}
	}
	return s, nil
}

// checkRelease checks the release an approval names ("" for the latest).
func checkRelease(r string) (string, error) {
	r = strings.TrimSpace(r)
	if err := httpx.CheckIdentifier("release", r, MaxRelease); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return r, nil
}

// unentitled returns the products the tenant holds no active
// entitlement to.
func (s *TicketService) unentitled(ctx context.Context, tenantID string, products []string) ([]string, error) {
	held, err := s.lic.EntitledProducts(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("reports: entitlements: %w", err)
	}
	var missing []string
	for _, p := range products {
		if !held[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// record appends an event to the ticket's history, and announces it to
// the ticket's tenant, in tx.
func (s *TicketService) record(ctx context.Context, tx TicketTx, out *licensing.Outbox, d *TicketDetail, typ, actor string, body eventBody, at time.Time) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	e, err := tx.AppendTicketEvent(ctx, d.ID, TicketEvent{Type: typ, Actor: actor, Body: b, At: at})
	if err != nil {
		return err
	}
	d.History = append(d.History, e)
	data := webhooks.Data{
		TenantID: d.TenantID, TicketID: d.ID, TicketNumber: d.Number, Status: d.Status, Products: d.Products, Actor: actor,
		Message: body.Message, Reason: body.Reason, Release: body.Release,
	}
	if typ == EventOpened {
		data.Subject, data.Message = d.Subject, d.Message
	}
	return out.Emit(ctx, tx, webhookTypes[typ], data, at)
}

// TicketRef is how a caller names a ticket: its number or its ID.
type TicketRef struct {
	Number int64
	ID     string
}

// ParseTicketRef reads a ticket's number ("42") or ID (a UUID as the API
// shows it). Errors wrap ErrInvalid.
func ParseTicketRef(s string) (TicketRef, error) {
	if s != "" && len(s) <= 18 && strings.Trim(s, "0123456789") == "" && s[0] != '0' {
		n, err := strconv.ParseInt(s, 10, 64)
		if err == nil && n < maxTicketNumber {
			return TicketRef{Number: n}, nil
		}
	}
	if u, err := uuid.Parse(s); err == nil && u.String() == s {
		return TicketRef{ID: s}, nil
	}
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return TicketRef{}, fmt.Errorf("%w: ticket %q: want a ticket number (42) or ID", ErrInvalid, s)
}

// find returns the ticket the reference names, if the actor may see it.
// A client bound to a tenant gets the same ErrNotFound for another
// tenant's ticket as for one that does not exist.
func (s *TicketService) find(ctx context.Context, a Actor, ref string) (Ticket, error) {
	if !a.bound() && !a.staff() {
		return Ticket{}, errUnbound
	}
	r, err := ParseTicketRef(ref)
	if err != nil {
		return Ticket{}, err
	}
	var t Ticket
	if r.Number > 0 {
		t, err = s.db.TicketByNumber(ctx, r.Number)
	} else {
		t, err = s.db.GetTicket(ctx, r.ID)
	}
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && a.bound() && t.TenantID != a.TenantID):
		return Ticket{}, fmt.Errorf("ticket %s: %w", ref, ErrNotFound)
	case err != nil:
		return Ticket{}, fmt.Errorf("reports: ticket %s: %w", ref, err)
	}
	return t, nil
}

// Get returns the ticket with its history. Errors wrap ErrNotFound for a
// ticket the actor may not see or that does not exist, ErrInvalid for a
// malformed reference.
func (s *TicketService) Get(ctx context.Context, a Actor, ref string) (TicketDetail, error) {
	t, err := s.find(ctx, a, ref)
	if err != nil {
		return TicketDetail{}, err
	}
	h, err := s.db.TicketHistory(ctx, t.ID)
	if err != nil {
		return TicketDetail{}, fmt.Errorf("reports: ticket %s: %w", ref, err)
	}
	return TicketDetail{Ticket: t, History: h}, nil
}

// List returns one page of tickets, oldest first, and the cursor of the
// next page ("" on the last). A client bound to a tenant lists that
// tenant's tickets only.
func (s *TicketService) List(ctx context.Context, a Actor, q TicketQuery) ([]Ticket, string, error) {
	switch {
	case a.bound() && q.TenantID != "" && q.TenantID != a.TenantID:
		return nil, "", fmt.Errorf("%w: tenant_id: a client bound to a tenant lists its own tenant's tickets only", ErrInvalid)
	case a.bound():
		q.TenantID = a.TenantID
	case !a.staff():
		return nil, "", errUnbound
	}
	switch {
	case q.Status != "" && !slices.Contains(TicketStatuses, q.Status):
		return nil, "", fmt.Errorf("%w: status %q: want %s", ErrInvalid, q.Status, strings.Join(TicketStatuses, ", "))
	case q.Limit < 0 || q.Limit > MaxTicketsPage:
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalid, q.Limit, MaxTicketsPage)
	case q.Limit == 0:
		q.Limit = DefaultTicketsPage
	}
	if err := httpx.CheckIdentifier("tenant_id", q.TenantID, maxTenantID); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ts, next, err := s.db.ListTickets(ctx, q)
	if errors.Is(err, ErrInvalid) {
		return nil, "", err // a bad cursor: the store's message names it
	}
	if err != nil {
		return nil, "", fmt.Errorf("reports: list tickets: %w", err)
	}
	return ts, next, nil
}

// Comment adds a comment to the ticket, whatever its status. Errors are
// those of Get, and ErrInvalid for a bad message.
func (s *TicketService) Comment(ctx context.Context, a Actor, ref, message string) (TicketDetail, error) {
	message, err := checkText("message", message, MaxMessage, true)
	if err != nil {
		return TicketDetail{}, err
	}
	t, err := s.find(ctx, a, ref)
	if err != nil {
		return TicketDetail{}, err
	}
	return s.change(ctx, t, a.ClientID, func(*Ticket) (string, eventBody, error) {
		return EventCommented, eventBody{Message: message}, nil
	})
}

// Approve approves an open ticket (staff only), for the release named
// ("" for the latest), and hands it to the Fulfiller. The tenant must
// still hold an active entitlement to every product (a
// *NotEntitledError otherwise). Errors wrap ErrConflict for a ticket no
// longer open, and are those of Get.
func (s *TicketService) Approve(ctx context.Context, a Actor, ref, release string) (TicketDetail, error) {
	if !a.staff() {
		return TicketDetail{}, errNotStaff
	}
	release, err := checkRelease(release)
	if err != nil {
		return TicketDetail{}, err
	}
	t, err := s.find(ctx, a, ref)
	if err != nil {
		return TicketDetail{}, err
	}
	if err := decidable(t); err != nil {
		return TicketDetail{}, err
	}
	missing, err := s.unentitled(ctx, t.TenantID, t.Products)
	if err != nil {
		return TicketDetail{}, err
	}
	if len(missing) > 0 {
		return TicketDetail{}, &NotEntitledError{TenantID: t.TenantID, Products: missing}
	}
	d, err := s.change(ctx, t, a.ClientID, func(t *Ticket) (string, eventBody, error) {
		if err := decidable(*t); err != nil {
			return "", eventBody{}, err
		}
		t.Status, t.Release = TicketApproved, release
		return EventApproved, eventBody{Release: release}, nil
	})
	if err != nil {
		return TicketDetail{}, err
	}
	s.fulfill(ctx, a, &d)
	return d, nil
}

// Reject rejects an open ticket (staff only), with a reason the tenant
// reads. Errors are those of Approve, and ErrInvalid for a bad reason.
func (s *TicketService) Reject(ctx context.Context, a Actor, ref, reason string) (TicketDetail, error) {
	if !a.staff() {
		return TicketDetail{}, errNotStaff
	}
	reason, err := checkText("reason", reason, MaxReason, true)
	if err != nil {
		return TicketDetail{}, err
	}
	t, err := s.find(ctx, a, ref)
	if err != nil {
		return TicketDetail{}, err
	}
	return s.change(ctx, t, a.ClientID, func(t *Ticket) (string, eventBody, error) {
		if err := decidable(*t); err != nil {
			return "", eventBody{}, err
		}
		t.Status = TicketRejected
		return EventRejected, eventBody{Reason: reason}, nil
	})
}

// decidable refuses to decide a ticket that was decided already.
func decidable(t Ticket) error {
	if t.Status != TicketOpen {
		return fmt.Errorf("%w: ticket %d is %s already", ErrConflict, t.Number, t.Status)
	}
	return nil
}

// change makes one change of a ticket in a transaction: it locks the
// ticket, lets apply change it and say what happened, stores it, records
// the event in the history and announces it; then it queues the
// announcement and returns the ticket with its history.
func (s *TicketService) change(ctx context.Context, t Ticket, actor string, apply func(*Ticket) (string, eventBody, error)) (TicketDetail, error) {
	now := s.now().UTC()
	out := s.lic.Outbox()
	var typ string
	err := s.db.InTicketTx(ctx, func(tx TicketTx) error {
		locked, err := tx.LockTicket(ctx, t.ID)
		if err != nil {
			return err
		}
		var body eventBody
		if typ, body, err = apply(&locked); err != nil {
			return err
		}
		locked.UpdatedAt = now
		if err := tx.UpdateTicket(ctx, locked); err != nil {
			return err
		}
		t = locked
		return s.record(ctx, tx, out, &TicketDetail{Ticket: locked}, typ, actor, body, now)
	})
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return TicketDetail{}, err
		}
		return TicketDetail{}, fmt.Errorf("reports: ticket %d: %w", t.Number, err)
	}
	out.Queue(ctx)
	s.log.InfoContext(ctx, "ticket "+typ, slog.Int64("number", t.Number), slog.String("ticket_id", t.ID), slog.String("by", actor))
	h, err := s.db.TicketHistory(ctx, t.ID)
	if err != nil {
		return TicketDetail{}, fmt.Errorf("reports: ticket %d: %w", t.Number, err)
	}
	return TicketDetail{Ticket: t, History: h}, nil
}

// fulfill hands an approved ticket to the Fulfiller, if there is one, and
// puts the links it made and what went wrong into d, with the history
// that now holds them.
func (s *TicketService) fulfill(ctx context.Context, a Actor, d *TicketDetail) {
	if s.cfg.Fulfiller == nil {
		return
	}
	links, err := s.cfg.Fulfiller.Fulfill(ctx, a, d.Ticket)
	d.Links = links
	if err != nil {
		s.log.ErrorContext(ctx, "approved ticket not fulfilled; the approval stands", slog.Int64("number", d.Number),
			slog.String("ticket_id", d.ID), slog.Any("error", err))
		d.LinkError = linkError(err)
	}
	if h, err := s.db.TicketHistory(ctx, d.ID); err == nil {
		d.History = h
	}
}

// linkError is what an approval's answer says of a failed fulfilment:
// the refusals of the reports domain say what to fix (a release not
// ready, none for a product); anything else is for the log.
func linkError(err error) string {
	var msg string
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid):
		msg = err.Error()
		if i := strings.Index(msg, "reports: "); i == 0 {
			msg = msg[len("reports: "):]
		}
	default:
		msg = "the bundle or its link could not be made; the server's log says why"
	}
	return "no secure link was made: " + msg
}
