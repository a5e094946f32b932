package server

import (
	"net/http"

	"github.com/vigil-sec/vigil/licensing/oauth"
	"github.com/vigil-sec/vigil/reports"
	repapi "github.com/vigil-sec/vigil/reports/api"
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
		// Fulfiller: the secure-links step builds the bundle and the link.
		Logger: s.log,
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
