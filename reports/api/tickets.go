package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports"
)

// Error codes of the tickets' routes, beside httpx's.
const (
	CodeNotFound    = "NOT_FOUND"
	CodeConflict    = "CONFLICT"
	CodeForbidden   = "FORBIDDEN"
	CodeNotEntitled = "NOT_ENTITLED"
)

// maxTicketBody bounds the tickets' request bodies: a message of
// reports.MaxMessage characters of up to 4 bytes, escaped, and the rest.
const maxTicketBody = 64 << 10

// Caller says who sends a request: the server makes the reports.Actor
// from the access token its middleware verified (the client, the tenant
// it is bound to, whether it holds tickets:admin). ok is false when the
// request carries none.
type Caller func(r *http.Request) (a reports.Actor, ok bool)

// Tickets serves the support tickets' routes of the Management API. The
// server mounts each handler behind its authentication and the route's
// scopes:
//
//	POST /api/v1/tickets                    Open     tickets:write (the client's tenant) or tickets:admin (tenant_id)
//	GET  /api/v1/tickets                    List     tickets:write (its tenant's) or tickets:admin (?tenant_id=, ?status=)
//	GET  /api/v1/tickets/{id}               Get      the ticket with its history; {id} is its number or ID
//	POST /api/v1/tickets/{id}/comments      Comment  tickets:write or tickets:admin
//	POST /api/v1/tickets/{id}/approve       Approve  tickets:admin
//	POST /api/v1/tickets/{id}/reject        Reject   tickets:admin
//
// A client bound to a tenant gets 404 for another tenant's ticket, as for
// one that does not exist.
type Tickets struct {
	svc    *reports.TicketService
	caller Caller
	log    *slog.Logger
}

// NewTickets returns the handlers of the tickets' routes; log (nil
// discards) receives the errors answered as 500.
func NewTickets(svc *reports.TicketService, caller Caller, log *slog.Logger) *Tickets {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tickets{svc: svc, caller: caller, log: log}
}

type openTicketRequest struct {
	TenantID string   `json:"tenant_id"`
	Products []string `json:"products"`
	Subject  string   `json:"subject"`
	Message  string   `json:"message"`
	Contact  string   `json:"contact"` // optional: the requester's e-mail address
}

type commentRequest struct {
	Message string `json:"message"`
}

type approveRequest struct {
	Release string `json:"release"`
}

type rejectRequest struct {
	Reason string `json:"reason"`
}

// actor is the request's caller; without one it answers 401 itself.
func (h *Tickets) actor(w http.ResponseWriter, r *http.Request) (reports.Actor, bool) {
	a, ok := h.caller(r)
	if !ok {
		httpx.WriteError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "send an access token from /oauth2/token in the Authorization: Bearer header")
	}
	return a, ok
}

// decode reads the request's body into dst; an empty body leaves dst as
// it is when optional. It answers the error itself.
func decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) bool {
	if optional && r.ContentLength == 0 {
		return true
	}
	if err := httpx.DecodeJSON(w, r, dst, maxTicketBody); err != nil {
		httpx.WriteErr(w, err)
		return false
	}
	return true
}

// Open serves POST /api/v1/tickets: 201 with the ticket and its history.
func (h *Tickets) Open(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	var req openTicketRequest
	if !decode(w, r, &req, false) {
		return
	}
	d, err := h.svc.Open(r.Context(), a, reports.NewTicket{TenantID: req.TenantID, Products: req.Products, Subject: req.Subject, Message: req.Message, Contact: req.Contact})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tickets/"+d.ID)
	httpx.WriteJSON(w, http.StatusCreated, d)
}

// List serves GET /api/v1/tickets?status=&tenant_id=&limit=&cursor=.
func (h *Tickets) List(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	tq := reports.TicketQuery{TenantID: q.Get("tenant_id"), Status: q.Get("status"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > reports.MaxTicketsPage {
			httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField, "limit "+strconv.Quote(v)+": want 1 to "+strconv.Itoa(reports.MaxTicketsPage))
			return
		}
		tq.Limit = n
	}
	ts, next, err := h.svc.List(r.Context(), a, tq)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []reports.Ticket{}
	}
	// As every list of the API: {"<items>": [...], "next_cursor": "..."}.
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"tickets": ts, "next_cursor": next})
}

// Get serves GET /api/v1/tickets/{id}.
func (h *Tickets) Get(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	d, err := h.svc.Get(r.Context(), a, r.PathValue("id"))
	h.answer(w, r, d, err)
}

// Comment serves POST /api/v1/tickets/{id}/comments {"message"}.
func (h *Tickets) Comment(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	var req commentRequest
	if !decode(w, r, &req, false) {
		return
	}
	d, err := h.svc.Comment(r.Context(), a, r.PathValue("id"), req.Message)
	h.answer(w, r, d, err)
}

// Approve serves POST /api/v1/tickets/{id}/approve {"release"} (the body
// may be absent: the latest release).
func (h *Tickets) Approve(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	var req approveRequest
	if !decode(w, r, &req, true) {
		return
	}
	d, err := h.svc.Approve(r.Context(), a, r.PathValue("id"), req.Release)
	h.answer(w, r, d, err)
}

// Reject serves POST /api/v1/tickets/{id}/reject {"reason"}.
func (h *Tickets) Reject(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	var req rejectRequest
	if !decode(w, r, &req, false) {
		return
	}
	d, err := h.svc.Reject(r.Context(), a, r.PathValue("id"), req.Reason)
	h.answer(w, r, d, err)
}

// answer writes the ticket with 200, or the error.
func (h *Tickets) answer(w http.ResponseWriter, r *http.Request, d reports.TicketDetail, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, d)
}

// writeError maps the service's errors to statuses: the sentinels' own
// messages are safe to show; anything else is logged and answered 500.
func (h *Tickets) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ne *reports.NotEntitledError
	switch {
	case errors.As(err, &ne):
		httpx.WriteError(w, http.StatusConflict, CodeNotEntitled, ne.Error())
	case errors.Is(err, reports.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, CodeNotFound, safeMessage(err, reports.ErrNotFound))
	case errors.Is(err, reports.ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField, safeMessage(err, reports.ErrInvalid))
	case errors.Is(err, reports.ErrConflict):
		httpx.WriteError(w, http.StatusConflict, CodeConflict, safeMessage(err, reports.ErrConflict))
	case errors.Is(err, reports.ErrForbidden):
		httpx.WriteError(w, http.StatusForbidden, CodeForbidden, safeMessage(err, reports.ErrForbidden))
	default:
		h.log.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		httpx.WriteErr(w, err)
	}
}

// safeMessage is the text of an error the service built from its
// sentinel and the caller's input; one that went through the database
// (its text may hold SQL) reads as the bare sentinel.
func safeMessage(err, sentinel error) string {
	msg := err.Error()
	if len(msg) > 500 || strings.Contains(msg, "store: ") || strings.Contains(msg, "reports: ") || strings.Contains(msg, "SQL") {
		return sentinel.Error()
	}
	return msg
}
