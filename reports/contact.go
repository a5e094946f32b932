package reports

// The requester's contact address on a ticket, and what became of the
// mail that carries a ticket's secure link to it (reports/notify sends
// it; the ticket's history says "mailed" or "mail_failed").

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"unicode"
)

// MaxContact is the longest contact address, in bytes: the longest path
// SMTP carries (RFC 5321 §4.5.3.1.3, 256 with the angle brackets).
const MaxContact = 254

// Types of the history events of a link's mail. They are not announced
// to the tenant's webhooks: the mail itself went to the tenant.
const (
	// EventMailed: the link's mail was accepted by the mail server.
	EventMailed = "mailed"
	// EventMailFailed: every attempt to send it failed; the link works
	// all the same, staff hand it over another way.
	EventMailFailed = "mail_failed"
)

// CheckContact checks a ticket's contact address and returns it as the
// bare address ("Jane <jane@example.com>" gives "jane@example.com"); ""
// stays "" (no contact). One address of at most MaxContact bytes,
// without control characters or spaces; errors wrap ErrInvalid and quote
// the input (bounded).
func CheckContact(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	bad := func(why string) error {
		q := s
		if len(q) > 80 {
			q = q[:80] + "…"
		}
		return fmt.Errorf("%w: contact %q: %s", ErrInvalid, q, why)
	}
	if len(s) > 4*MaxContact {
		return "", bad(fmt.Sprintf("at most %d bytes", MaxContact))
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Bidi_Control, r)
	}) {
		return "", bad("must not contain control characters or line breaks")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", bad("want one e-mail address, like jane@example.com")
	}
	addr := a.Address
	local, domain, ok := strings.Cut(addr, "@")
	switch {
	case !ok || local == "" || domain == "":
		return "", bad("want one e-mail address, like jane@example.com")
	case len(addr) > MaxContact:
		return "", bad(fmt.Sprintf("at most %d bytes", MaxContact))
	case strings.ContainsFunc(addr, unicode.IsSpace) || strings.ContainsAny(addr, "<>,;\"\\"):
		return "", bad("want a plain address: no spaces, quotes, brackets or lists")
	case strings.HasPrefix(domain, "["):
		return "", bad("an address literal is not accepted: give a domain name")
	}
	return addr, nil
}

// mailBody is the body of the mail events.
type mailBody struct {
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"` // mail_failed: why, as the mailer said it
}

// RecordMail adds to the history of the ticket with the number that the
// mail carrying its secure link was sent to the address (failure "") or
// failed for good (failure says why; it must hold no secret). The actor
// is SystemActor. It is what reports/notify calls once a mail's fate is
// known (notify.History); ErrNotFound for an unknown ticket.
func (s *TicketService) RecordMail(ctx context.Context, number int64, to, failure string) error {
	t, err := s.db.TicketByNumber(ctx, number)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("ticket %d: %w", number, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reports: ticket %d: %w", number, err)
	}
	typ, body := EventMailed, mailBody{To: to}
	if failure != "" {
		if len(failure) > MaxReason {
			failure = failure[:MaxReason]
		}
		typ, body.Reason = EventMailFailed, strings.ToValidUTF8(failure, "?")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	at := s.now().UTC()
	err = s.db.InTicketTx(ctx, func(tx TicketTx) error {
		// Locked, so that the event's number is not taken by a change
		// made at the same time.
		if _, err := tx.LockTicket(ctx, t.ID); err != nil {
			return err
		}
		_, err := tx.AppendTicketEvent(ctx, t.ID, TicketEvent{Type: typ, Actor: SystemActor, Body: b, At: at})
		return err
	})
	if err != nil {
		return fmt.Errorf("reports: ticket %d: record %s: %w", number, typ, err)
	}
	s.log.InfoContext(ctx, "ticket "+typ, slog.Int64("number", number), slog.String("ticket_id", t.ID))
	return nil
}
