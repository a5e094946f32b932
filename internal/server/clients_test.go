package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
)

type clientJSON struct {
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret"`
	Name         string    `json:"name"`
	Scopes       []string  `json:"scopes"`
	TenantID     string    `json:"tenant_id"`
	CreatedAt    time.Time `json:"created_at"`
	RevokedAt    time.Time `json:"revoked_at"`
}

// raw sends a request with c and returns the status, headers and body.
func (e *env) raw(c *http.Client, method, path string, body any, headers ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// tokenClient is an API client of the credentials.
func (e *env) tokenClient(id, secret string) *http.Client {
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
	return cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client()))
}

// TestClientsAPI: the admin scope alone manages clients; the secret is
// shown once (no-store, never listed); bad input is 400 naming the field;
// a revoked client's tokens stop at once; lists page.
func TestClientsAPI(t *testing.T) {
	e := setup(t, store.SQLite)

	// Every scope but admin is refused every route, a tenant's own
	// client too; no token is 401.
	var tenant struct{ ID string }
	if code := e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Fatalf("create tenant: %d", code)
	}
	others := []*http.Client{e.clientWith(server.ScopeProjectsAdmin, server.ScopeScansRead, server.ScopeScansWrite, server.ScopeGateRead,
		server.ScopeLicensingAdmin, server.ScopeTicketsAdmin, server.ScopeReportsAdmin)}
	tc, err := server.CreateClient(context.Background(), e.srv.OAuth(), "acme", tenant.ID, []string{server.ScopeTicketsWrite})
	if err != nil {
		t.Fatal(err)
	}
	others = append(others, e.tokenClient(tc.ID, tc.ClientSecret))
	routes := []struct{ method, path string }{
		{"POST", "/api/v1/clients"}, {"GET", "/api/v1/clients"}, {"GET", "/api/v1/clients/" + tc.ID}, {"POST", "/api/v1/clients/" + tc.ID + "/revoke"},
	}
	for _, r := range routes {
		var body any
		if r.method == "POST" {
			body = map[string]any{"name": "x", "scopes": []string{"admin"}}
		}
		for i, c := range others {
			if code, _, b := e.raw(c, r.method, r.path, body); code != http.StatusForbidden || !strings.Contains(string(b), "INSUFFICIENT_SCOPE") {
				t.Errorf("%s %s with the non-admin client %d: %d %s, want 403", r.method, r.path, i, code, b)
			}
		}
		if code, _, _ := e.raw(e.ts.Client(), r.method, r.path, body); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", r.method, r.path, code)
		}
	}
	if c, _ := e.srv.OAuth().GetClient(context.Background(), tc.ID); !c.RevokedAt.IsZero() {
		t.Fatal("a refused revoke revoked the client")
	}

	// Made by the admin: 201, no-store, the secret once, and it works.
	code, h, b := e.raw(e.api, "POST", "/api/v1/clients", map[string]any{"name": "ci", "scopes": []string{"scans:read", "gate:read"}})
	var made clientJSON
	if err := json.Unmarshal(b, &made); code != http.StatusCreated || err != nil || made.ClientID == "" || made.ClientSecret == "" {
		t.Fatalf("create: %d %s", code, b)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("Location") != "/api/v1/clients/"+made.ClientID {
		t.Errorf("create: Cache-Control %q, Location %q", h.Get("Cache-Control"), h.Get("Location"))
	}
	if strings.Join(made.Scopes, " ") != "gate:read scans:read" || made.Name != "ci" || made.CreatedAt.IsZero() {
		t.Errorf("create answered %+v", made)
	}
	ci := e.tokenClient(made.ClientID, made.ClientSecret)
	if code, _, b := e.raw(ci, "GET", "/api/v1/projects", nil); code != 200 {
		t.Fatalf("the new client's token: %d %s", code, b)
	}
	for _, path := range []string{"/api/v1/clients", "/api/v1/clients/" + made.ClientID} {
		code, _, b := e.raw(e.api, "GET", path, nil)
		if code != 200 || !strings.Contains(string(b), made.ClientID) || strings.Contains(string(b), made.ClientSecret) || strings.Contains(string(b), "client_secret") {
			t.Errorf("GET %s: %d %s: want the client without its secret", path, code, b)
		}
	}

	// A retry with the same Idempotency-Key answers the same client.
	req := map[string]any{"name": "retried", "scopes": []string{"scans:read"}}
	_, _, first := e.raw(e.api, "POST", "/api/v1/clients", req, "Idempotency-Key", "k-1")
	_, h2, again := e.raw(e.api, "POST", "/api/v1/clients", req, "Idempotency-Key", "k-1")
	if !bytes.Equal(first, again) || h2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("a retried create answered\n%s\nthen\n%s", first, again)
	}

	// Bad input names the field; nothing is made.
	before, _ := e.srv.OAuth().ListClients(context.Background())
	for _, tc := range []struct {
		body any
		want string
	}{
		{map[string]any{"scopes": []string{"scans:read"}}, "name"},
		{map[string]any{"name": "x"}, "scopes"},
		{map[string]any{"name": "x", "scopes": []string{"nope"}}, `unknown scope \"nope\"`},
		{map[string]any{"name": "x", "scopes": []string{"admin"}, "tenant_id": tenant.ID}, "bound to a tenant"},
		{map[string]any{"name": "x", "scopes": []string{"tickets:write"}, "tenant_id": "nope"}, "tenant_id"},
		{map[string]any{"name": "x", "scopes": []string{"scans:read"}, "secret": "mine"}, "secret"},
		{map[string]any{"name": "a\x00b", "scopes": []string{"scans:read"}}, "name"},
	} {
		code, _, b := e.raw(e.api, "POST", "/api/v1/clients", tc.body)
		if code != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("create %v: %d %s, want 400 naming %s", tc.body, code, b, tc.want)
		}
	}
	if after, _ := e.srv.OAuth().ListClients(context.Background()); len(after) != len(before) {
		t.Errorf("refused creates made %d clients", len(after)-len(before))
	}

	// Pages: limit, next_cursor, an unknown cursor refused.
	all, _ := e.srv.OAuth().ListClients(context.Background())
	var seen []string
	for cursor := ""; ; {
		var page struct {
			Clients    []clientJSON `json:"clients"`
			NextCursor string       `json:"next_cursor"`
		}
		if code := e.do("GET", "/api/v1/clients?limit=2&cursor="+cursor, nil, &page); code != 200 || len(page.Clients) > 2 {
			t.Fatalf("page after %q: %d, %d clients", cursor, code, len(page.Clients))
		}
		for _, c := range page.Clients {
			seen = append(seen, c.ClientID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != len(all) || seen[0] != all[0].ID || seen[len(seen)-1] != all[len(all)-1].ID {
		t.Errorf("paged through %v, want the %d clients oldest first", seen, len(all))
	}
	if code, _, b := e.raw(e.api, "GET", "/api/v1/clients?cursor=nope", nil); code != http.StatusBadRequest || !strings.Contains(string(b), "cursor") {
		t.Errorf("an unknown cursor: %d %s", code, b)
	}

	// Revoked: its live token stops at once; again keeps the first time;
	// an unknown ID is 404 naming it.
	code, _, b = e.raw(e.api, "POST", "/api/v1/clients/"+made.ClientID+"/revoke", nil)
	var revoked clientJSON
	if err := json.Unmarshal(b, &revoked); code != 200 || err != nil || revoked.RevokedAt.IsZero() || revoked.ClientSecret != "" {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if code, _, _ := e.raw(ci, "GET", "/api/v1/projects", nil); code != http.StatusUnauthorized {
		t.Errorf("the revoked client's token still works: %d", code)
	}
	_, _, b = e.raw(e.api, "POST", "/api/v1/clients/"+made.ClientID+"/revoke", nil)
	var again2 clientJSON
	if json.Unmarshal(b, &again2); !again2.RevokedAt.Equal(revoked.RevokedAt) {
		t.Errorf("revoked again: revoked_at %v, first %v", again2.RevokedAt, revoked.RevokedAt)
	}
	for _, r := range []struct{ method, path string }{{"GET", "/api/v1/clients/nope"}, {"POST", "/api/v1/clients/nope/revoke"}} {
		if code, _, b := e.raw(e.api, r.method, r.path, nil); code != http.StatusNotFound || !strings.Contains(string(b), "nope") {
			t.Errorf("%s %s: %d %s, want 404 naming it", r.method, r.path, code, b)
		}
	}
}

// TestReportKeysAPI: reports:admin lists the keys with their status and
// rotates; the old key is retired, never shown with a private half; other
// scopes are refused.
func TestReportKeysAPI(t *testing.T) {
	e := setup(t, store.SQLite)
	staff := e.clientWith(server.ScopeReportsAdmin)
	for _, c := range []*http.Client{e.clientWith(server.ScopeScansRead, server.ScopeTicketsAdmin, server.ScopeLicensingAdmin), e.ts.Client()} {
		for _, r := range []struct{ method, path string }{{"GET", "/api/v1/report-keys"}, {"POST", "/api/v1/report-keys/rotate"}} {
			if code, _, _ := e.raw(c, r.method, r.path, nil); code != http.StatusForbidden && code != http.StatusUnauthorized {
				t.Errorf("%s %s without reports:admin: %d", r.method, r.path, code)
			}
		}
	}
	keys, err := e.srv.ReportKeys().Keys(context.Background())
	if err != nil || len(keys) != 0 {
		t.Fatalf("a refused rotate made keys: %v %v", keys, err)
	}
	type keyJSON struct {
		ID        string     `json:"kid"`
		Current   bool       `json:"current"`
		CreatedAt time.Time  `json:"created_at"`
		RetiredAt *time.Time `json:"retired_at"`
	}
	var list struct {
		Keys       []keyJSON `json:"keys"`
		NextCursor *string   `json:"next_cursor"`
	}
	if code := e.doWith(staff, "GET", "/api/v1/report-keys", nil, &list); code != 200 || list.Keys == nil || len(list.Keys) != 0 || list.NextCursor == nil {
		t.Fatalf("no keys yet: %d %+v", code, list)
	}
	var first, second keyJSON
	if code := e.doWith(staff, "POST", "/api/v1/report-keys/rotate", nil, &first); code != http.StatusCreated || !first.Current || first.ID == "" {
		t.Fatalf("rotate: %d %+v", code, first)
	}
	if code := e.doWith(e.api, "POST", "/api/v1/report-keys/rotate", nil, &second); code != http.StatusCreated || second.ID == first.ID {
		t.Fatalf("rotate with admin: %d %+v", code, second)
	}
	code, _, b := e.raw(staff, "GET", "/api/v1/report-keys", nil)
	if err := json.Unmarshal(b, &list); code != 200 || err != nil || len(list.Keys) != 2 ||
		list.Keys[0].ID != second.ID || !list.Keys[0].Current || list.Keys[0].RetiredAt != nil ||
		list.Keys[1].ID != first.ID || list.Keys[1].Current || list.Keys[1].RetiredAt == nil {
		t.Fatalf("after two rotations: %d %s", code, b)
	}
	if strings.Contains(string(b), "PRIVATE") || strings.Contains(string(b), "sealed") {
		t.Errorf("the key list shows a private key: %s", b)
	}
}
