package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// The Management API's own clients (OAuth2 client_credentials), managed
// through the API as `vigil clients` manages them on the store:
//
//	POST /api/v1/clients              make a client; its secret is in this answer only
//	GET  /api/v1/clients              list them, revoked ones included
//	GET  /api/v1/clients/{id}         one client
//	POST /api/v1/clients/{id}/revoke  revoke it: no more tokens, and its tokens stop working
//
// Only ScopeAdmin reaches them: a client that may make clients may give
// itself any scope.

// maxClientName bounds a client's name.
const maxClientName = 200

// defaultClientPage is the page size of GET /api/v1/clients without ?limit=.
const defaultClientPage = 100

// NewClient is a client just made, as POST /api/v1/clients answers it and
// `vigil clients create --json` prints it: the secret is shown this once
// (only a keyed hash of it is kept).
type NewClient struct {
	oauth.Client
	ClientSecret string `json:"client_secret"`
}

// CheckNewClient checks a client's name, scopes and tenant as POST
// /api/v1/clients does, naming the fields as the API does.
func CheckNewClient(name, tenantID string, scopes []string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("name is required")
	}
	if err := httpx.CheckIdentifier("name", name, maxClientName); err != nil {
		return err
	}
	if tenantID != "" {
		if err := httpx.CheckIdentifier("tenant_id", tenantID, 128); err != nil {
			return err
		}
	}
	known := Scopes
	if tenantID != "" {
		known = TenantScopes
	}
	if len(scopes) == 0 {
		return fmt.Errorf("scopes is required: some of %s", strings.Join(known, ", "))
	}
	for _, s := range scopes {
		switch {
		case tenantID != "" && slices.Contains(Scopes, s) && !slices.Contains(known, s):
			return fmt.Errorf("scope %q: a client bound to a tenant may hold only %s", s, strings.Join(known, ", "))
		case !slices.Contains(known, s):
			return fmt.Errorf("unknown scope %q: want some of %s", s, strings.Join(known, ", "))
		}
	}
	return nil
}

// CreateClient makes a client on o and returns it with its secret; check
// the input with CheckNewClient first. An unknown tenant is an error
// wrapping oauth.ErrNotFound.
func CreateClient(ctx context.Context, o *oauth.Server, name, tenantID string, scopes []string) (NewClient, error) {
	id, secret, err := o.CreateTenantClient(ctx, name, tenantID, scopes)
	if err != nil {
		return NewClient{}, err
	}
	c, err := o.GetClient(ctx, id)
	if err != nil {
		return NewClient{}, err
	}
	return NewClient{Client: c, ClientSecret: secret}, nil
}

// RevokeClient revokes the client on o and returns it as it now is; an
// unknown client is an error wrapping oauth.ErrNotFound.
func RevokeClient(ctx context.Context, o *oauth.Server, id string) (oauth.Client, error) {
	if err := o.RevokeClient(ctx, id); err != nil {
		return oauth.Client{}, err
	}
	return o.GetClient(ctx, id)
}

func (s *Server) registerClients(mux *http.ServeMux) {
	api := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireAnyScope(h, ScopeAdmin)))
	}
	api("POST /api/v1/clients", s.createClient)
	api("GET /api/v1/clients", s.listClients)
	api("GET /api/v1/clients/{id}", s.getClient)
	api("POST /api/v1/clients/{id}/revoke", s.revokeClient)
}

type createClientRequest struct {
	Name     string   `json:"name"`
	Scopes   []string `json:"scopes"`
	TenantID string   `json:"tenant_id"`
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var req createClientRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if err := CheckNewClient(req.Name, req.TenantID, req.Scopes); err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return
	}
	c, err := CreateClient(r.Context(), s.oauth, strings.TrimSpace(req.Name), req.TenantID, req.Scopes)
	switch {
	case errors.Is(err, oauth.ErrNotFound):
		httpx.WriteErr(w, invalidField("tenant_id %q: no such tenant", req.TenantID))
		return
	case errors.Is(err, oauth.ErrInvalidScope):
		httpx.WriteErr(w, invalidField("%s", strings.TrimPrefix(err.Error(), oauth.ErrInvalidScope.Error()+": ")))
		return
	case err != nil:
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/clients/"+c.ID)
	w.Header().Set("Cache-Control", "no-store") // the secret
	httpx.WriteJSON(w, http.StatusCreated, c)
}

// listClients answers one page of the clients, oldest first; the cursor
// is the ID of the last client of the previous page. The clients are few:
// the page is cut from the whole list.
func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, 1000)
	if !ok {
		return
	}
	if limit == 0 {
		limit = defaultClientPage
	}
	cs, err := s.oauth.ListClients(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if cursor := r.URL.Query().Get("cursor"); cursor != "" {
		i := slices.IndexFunc(cs, func(c oauth.Client) bool { return c.ID == cursor })
		if i < 0 {
			httpx.WriteErr(w, invalidField("cursor %q: not the next_cursor of a page of clients", truncate(cursor, 64)))
			return
		}
		cs = cs[i+1:]
	}
	next := ""
	if len(cs) > limit {
		cs = cs[:limit]
		next = cs[limit-1].ID
	}
	httpx.WriteJSON(w, http.StatusOK, LicensingList("clients", cs, next))
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.oauth.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeClientError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

func (s *Server) revokeClient(w http.ResponseWriter, r *http.Request) {
	c, err := RevokeClient(r.Context(), s.oauth, r.PathValue("id"))
	if err != nil {
		s.writeClientError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

// writeClientError answers an unknown client with 404 naming it.
func (s *Server) writeClientError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, oauth.ErrNotFound) {
		httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no client has the ID %q", truncate(r.PathValue("id"), 64)))
		return
	}
	s.writeStoreError(w, r, err)
}
