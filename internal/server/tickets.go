package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/vigil-sec/vigil/licensing/oauth"
	"github.com/vigil-sec/vigil/reports"
	repapi "github.com/vigil-sec/vigil/reports/api"
	"github.com/vigil-sec/vigil/reports/notify"
)

// Support tickets on the Management API: the service is reports'
// (reports/tickets.go), the handlers reports/api's; the server mounts them
// behind its OAuth middleware and the routes' scopes, and says who calls
// (ticketActor).

// The scopes of the support tickets. ScopeTicketsWrite is the customers':
// a client bound to a tenant opens, reads and comments on that tenant's
// tickets. ScopeTicketsAdmin is the staff's: every tenant's tickets, and
// approval and rejection. ScopeAdmin grants both.
const (
	ScopeTicketsWrite = "tickets:write"
	ScopeTicketsAdmin = "tickets:admin"
)

// TenantScopes are the scopes a client bound to a tenant may hold
// (oauth.Config.TenantScopes): what acts for one tenant alone.
var TenantScopes = []string{ScopeTicketsWrite}

// The tickets' scopes join Scopes here, so that this file holds all of
// the tickets' wiring.
func init() { Scopes = append(Scopes, ScopeTicketsWrite, ScopeTicketsAdmin) }

// newTickets makes the tickets' service on the store and the licensing
// service.
func (s *Server) newTickets() (*reports.TicketService, error) {
	return reports.NewTicketService(s.db, s.lic, reports.TicketConfig{
		AutoApprove: s.cfg.TicketsAutoApprove,
		Fulfiller:   fulfiller{s},
		Logger:      s.log,
	})
}

// Tickets returns the support tickets' service.
func (s *Server) Tickets() *reports.TicketService { return s.tickets }

// registerTickets mounts the tickets' routes.
func (s *Server) registerTickets(mux *http.ServeMux) {
	h := repapi.NewTickets(s.tickets, ticketActor, s.log)
	api := func(pattern string, fn http.HandlerFunc, scope string, or ...string) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireAnyScope(fn, scope, append(or, ScopeAdmin)...)))
	}
	api("POST /api/v1/tickets", h.Open, ScopeTicketsWrite, ScopeTicketsAdmin)
	api("GET /api/v1/tickets", h.List, ScopeTicketsWrite, ScopeTicketsAdmin)
	api("GET /api/v1/tickets/{id}", h.Get, ScopeTicketsWrite, ScopeTicketsAdmin)
	api("POST /api/v1/tickets/{id}/comments", h.Comment, ScopeTicketsWrite, ScopeTicketsAdmin)
	api("POST /api/v1/tickets/{id}/approve", h.Approve, ScopeTicketsAdmin)
	api("POST /api/v1/tickets/{id}/reject", h.Reject, ScopeTicketsAdmin)
}

// ticketActor is the caller of a tickets' route, from the access token
// oauth.Middleware verified: a client bound to a tenant acts for it
// alone; one bound to none is staff with tickets:admin (or admin).
func ticketActor(r *http.Request) (reports.Actor, bool) {
	c, ok := oauth.ClaimsFromContext(r.Context())
	if !ok {
		return reports.Actor{}, false
	}
	return reports.Actor{
		ClientID: c.ClientID, TenantID: c.TenantID,
		Staff: c.HasScope(ScopeTicketsAdmin) || c.HasScope(ScopeAdmin),
	}, true
}

// fulfiller answers an approved ticket: the signed bundle of each of its
// products' approved release (publish.BuildForTicket), a secure link to
// each, and the link mailed to the ticket's contact when the server has
// a mail server. It holds the server, not its parts: the tickets' service
// is made before the publisher and the links, which need it.
type fulfiller struct{ s *Server }

func (f fulfiller) Fulfill(ctx context.Context, a reports.Actor, t reports.Ticket) ([]reports.IssuedLink, error) {
	s := f.s
	if s.bundles == nil || s.links == nil {
		return nil, errors.New("server: bundles and links are not set up")
	}
	bundles, err := s.bundles.BuildForTicket(ctx, t)
	if err != nil {
		return nil, err
	}
	creator := reports.Actor{ClientID: a.ClientID, Staff: true}
	var out []reports.IssuedLink
	for _, b := range bundles {
		l, token, err := s.links.Create(ctx, creator, reports.NewLink{Ticket: t.ID, BundleID: b.ID})
		if err != nil {
			return out, fmt.Errorf("link to bundle %s: %w", b.ID, err)
		}
		il := reports.IssuedLink{Link: l, Token: token, URL: s.links.URL(token)}
		out = append(out, il)
		s.mailLink(ctx, t, b, il)
	}
	return out, nil
}

// mailLink queues the mail of a new link to the ticket's contact, when
// there is a mail server, a contact and a public URL to link to. A mail
// that cannot be queued is logged: the link stands.
func (s *Server) mailLink(ctx context.Context, t reports.Ticket, b reports.Bundle, il reports.IssuedLink) {
	if s.mailer == nil || t.Contact == "" {
		return
	}
	if il.URL == "" {
		s.log.WarnContext(ctx, "secure link not mailed: the server has no --public-url to link to", slog.Int64("ticket", t.Number), slog.String("link_id", il.ID))
		return
	}
	err := s.mailer.SendLink(ctx, t.Contact, notify.LinkMail{
		Product: b.ProductName, Version: b.Version, TicketNumber: t.Number,
		URL: il.URL, Expires: il.ExpiresAt, DownloadsLeft: il.DownloadsLeft,
	})
	if err != nil {
		s.log.ErrorContext(ctx, "secure link not mailed; the link stands", slog.Int64("ticket", t.Number), slog.String("link_id", il.ID), slog.Any("error", err))
	}
}

// lazyBundles is the publisher as the links read bundles through it:
// the links are made before the publisher (which needs the tickets).
type lazyBundles struct{ s *Server }

func (l lazyBundles) Bundle(ctx context.Context, id string) (reports.Bundle, error) {
	if l.s.bundles == nil {
		return reports.Bundle{}, fmt.Errorf("%w: bundle %s", reports.ErrNotFound, id)
	}
	return l.s.bundles.Bundle(ctx, id)
}

func (l lazyBundles) OpenBundle(ctx context.Context, id string) (reports.BundleContent, error) {
	if l.s.bundles == nil {
		return nil, fmt.Errorf("%w: bundle %s", reports.ErrNotFound, id)
	}
	return l.s.bundles.OpenBundle(ctx, id)
}
