package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// ticketJSON is a ticket as the API answers it.
type ticketJSON struct {
	ID        string
	Number    int64
	TenantID  string `json:"tenant_id"`
	Products  []string
	Subject   string
	Message   string
	Status    string
	Release   string
	CreatedBy string `json:"created_by"`
	History   []struct {
		Seq         int
		Type, Actor string
		Body        map[string]any
	}
}

// kinds are the types and actors of the ticket's history.
func (t ticketJSON) kinds() []string {
	var out []string
	for _, h := range t.History {
		out = append(out, h.Type+" by "+h.Actor)
	}
	return out
}

// ticketFixture is a server with two tenants: acme holds app and agent,
// globex app; "legacy" exists, held by none. Each tenant has a client
// bound to it with tickets:write; staff hold tickets:admin.
type ticketFixture struct {
	e                     *env
	acme, globex          string
	staff, acmeC, globexC *http.Client
	staffID, acmeID       string
}

func newTicketFixture(t *testing.T, e *env) *ticketFixture {
	t.Helper()
	f := &ticketFixture{e: e}
	for _, p := range []string{"app", "agent", "legacy"} {
		if code := e.do("POST", "/api/v1/products", map[string]any{"id": p, "name": p}, nil); code != http.StatusCreated {
			t.Fatalf("create product %s: %d", p, code)
		}
	}
	tenant := func(name string, products ...string) string {
		var tn struct{ ID string }
		if code := e.do("POST", "/api/v1/tenants", map[string]any{"name": name}, &tn); code != http.StatusCreated {
			t.Fatalf("create tenant: %d", code)
		}
		for _, p := range products {
			if code := e.do("POST", "/api/v1/entitlements", map[string]any{"tenant_id": tn.ID, "product_id": p, "seats": 1}, nil); code != http.StatusCreated {
				t.Fatalf("create entitlement: %d", code)
			}
		}
		return tn.ID
	}
	f.acme, f.globex = tenant("Acme", "app", "agent"), tenant("Globex", "app")
	f.staff, f.staffID = e.tenantClient("", server.ScopeTicketsAdmin)
	f.acmeC, f.acmeID = e.tenantClient(f.acme, server.ScopeTicketsWrite)
	f.globexC, _ = e.tenantClient(f.globex, server.ScopeTicketsWrite)
	return f
}

// tenantClient makes an API client of a new OAuth2 client bound to the
// tenant ("" for none) with the scopes, and returns its ID too.
func (e *env) tenantClient(tenant string, scopes ...string) (*http.Client, string) {
	e.t.Helper()
	id, secret, err := e.srv.OAuth().CreateTenantClient(context.Background(), "client of "+tenant, tenant, scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
	return cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client())), id
}

type apiErrorJSON struct{ Code, Message string }

// TestTicketsAPI drives the tickets through the Management API with real
// tokens: customers' clients bound to their tenants, staff, scopes,
// refusals that change nothing, and the signed ticket.* webhooks each
// tenant receives.
func TestTicketsAPI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := hookSetup(t, dialect)
		f := newTicketFixture(t, e)

		// Acme's endpoint checks the v1a signature with Acme's key and the
		// v1 HMAC with its secret.
		acmeHook := newReceiver(t)
		var key struct {
			PublicKey string `json:"public_key"`
		}
		var hook struct{ Secret string }
		e.do("GET", "/api/v1/tenants/"+f.acme+"/webhook-key", nil, &key)
		if code := e.do("POST", "/api/v1/tenants/"+f.acme+"/webhooks", map[string]any{"url": acmeHook.srv.URL, "hmac": true}, &hook); code != http.StatusCreated {
			t.Fatalf("create webhook: %d", code)
		}
		acmeHook.mu.Lock()
		acmeHook.pub, acmeHook.secret = key.PublicKey, hook.Secret
		acmeHook.mu.Unlock()
		globexHook := newReceiver(t)
		e.do("GET", "/api/v1/tenants/"+f.globex+"/webhook-key", nil, &key)
		e.do("POST", "/api/v1/tenants/"+f.globex+"/webhooks", map[string]any{"url": globexHook.srv.URL}, nil)
		globexHook.mu.Lock()
		globexHook.pub = key.PublicKey
		globexHook.mu.Unlock()

		// Acme opens a ticket for itself, once, whatever the retries.
		ask := map[string]any{"products": []string{"app"}, "subject": "Latest audit report", "message": "For our auditors, please."}
		first := e.postKey(f.acmeC, "/api/v1/tickets", "acme-ask-1", ask)
		again := e.postKey(f.acmeC, "/api/v1/tickets", "acme-ask-1", ask)
		var one ticketJSON
		if first.code != http.StatusCreated || again.body != first.body {
			t.Fatalf("open: %d %s; retried: %d %s", first.code, first.body, again.code, again.body)
		}
		if e.doWith(f.acmeC, "GET", "/api/v1/tickets/1", nil, &one); one.Number != 1 || one.TenantID != f.acme || one.CreatedBy != f.acmeID ||
			one.Status != "open" || !slices.Equal(one.kinds(), []string{"opened by " + f.acmeID}) {
			t.Fatalf("ticket 1 = %+v", one)
		}
		if loc := first.header.Get("Location"); loc != "/api/v1/tickets/"+one.ID {
			t.Errorf("Location = %q", loc)
		}

		// Products it holds no active entitlement to are refused, named.
		var apiErr apiErrorJSON
		code := e.doWith(f.globexC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"app", "agent", "legacy"}, "subject": "s", "message": "m"}, &apiErr)
		if code != http.StatusConflict || apiErr.Code != "NOT_ENTITLED" || !strings.Contains(apiErr.Message, `"agent", "legacy"`) {
			t.Errorf("unentitled products: %d %+v", code, apiErr)
		}

		// Globex cannot see, comment on or list Acme's ticket: 404 as for
		// a ticket that does not exist.
		var unknown apiErrorJSON
		e.doWith(f.globexC, "GET", "/api/v1/tickets/99", nil, &unknown)
		for _, ref := range []string{"1", one.ID} {
			if code := e.doWith(f.globexC, "GET", "/api/v1/tickets/"+ref, nil, &apiErr); code != http.StatusNotFound ||
				apiErr.Code != unknown.Code || strings.Replace(apiErr.Message, ref, "99", 1) != unknown.Message {
				t.Errorf("globex GET %s: %d %+v; want what an unknown ticket answers (%+v)", ref, code, apiErr, unknown)
			}
			if code := e.doWith(f.globexC, "POST", "/api/v1/tickets/"+ref+"/comments", map[string]any{"message": "hi"}, nil); code != http.StatusNotFound {
				t.Errorf("globex comment on %s: %d, want 404", ref, code)
			}
		}
		var list struct {
			Tickets    []ticketJSON
			NextCursor *string `json:"next_cursor"`
		}
		if code := e.doWith(f.globexC, "GET", "/api/v1/tickets", nil, &list); code != 200 || list.Tickets == nil || len(list.Tickets) != 0 || list.NextCursor == nil {
			t.Errorf("globex's list: %d %+v, want an empty list", code, list)
		}
		if code := e.doWith(f.globexC, "GET", "/api/v1/tickets?tenant_id="+f.acme, nil, nil); code != http.StatusBadRequest {
			t.Errorf("globex listing acme's: %d, want 400", code)
		}

		// Scopes: tickets:write neither approves nor rejects; other scopes
		// reach no ticket; a tenant's client reaches nothing else.
		for _, p := range []string{"/approve", "/reject"} {
			if code := e.doWith(f.acmeC, "POST", "/api/v1/tickets/1"+p, map[string]any{"reason": "x"}, &apiErr); code != http.StatusForbidden || apiErr.Code != "INSUFFICIENT_SCOPE" {
				t.Errorf("acme POST %s: %d %+v, want 403 INSUFFICIENT_SCOPE", p, code, apiErr)
			}
		}
		reader := e.clientWith(server.ScopeScansRead, server.ScopeLicensingAdmin)
		if code := e.doWith(reader, "GET", "/api/v1/tickets", nil, nil); code != http.StatusForbidden {
			t.Errorf("scans:read + licensing:admin listing tickets: %d, want 403", code)
		}
		if code := e.doWith(f.acmeC, "GET", "/api/v1/tenants", nil, nil); code != http.StatusForbidden {
			t.Errorf("a tenant's client listing tenants: %d, want 403", code)
		}
		unbound, _ := e.tenantClient("", server.ScopeTicketsWrite)
		if code := e.doWith(unbound, "POST", "/api/v1/tickets", map[string]any{"tenant_id": f.acme, "products": []string{"app"}, "subject": "s", "message": "m"}, &apiErr); code != http.StatusForbidden || apiErr.Code != "FORBIDDEN" {
			t.Errorf("tickets:write bound to no tenant: %d %+v, want 403 FORBIDDEN", code, apiErr)
		}
		if _, _, err := e.srv.OAuth().CreateTenantClient(context.Background(), "greedy", f.acme, []string{server.ScopeTicketsAdmin}); err == nil {
			t.Error("a tenant's client was given tickets:admin")
		}

		// Bad input is refused and changes nothing.
		long := strings.Repeat("s", 201)
		for _, c := range []struct {
			method, path string
			body         any
			want         string
		}{
			{"POST", "/api/v1/tickets", map[string]any{"products": []string{"app"}, "subject": long, "message": "m"}, "INVALID_FIELD"},
			{"POST", "/api/v1/tickets", map[string]any{"products": []string{"app"}, "subject": "s", "message": "m", "priority": "high"}, "UNKNOWN_FIELD"},
			{"POST", "/api/v1/tickets", map[string]any{"products": []string{}, "subject": "s", "message": "m"}, "INVALID_FIELD"},
			{"POST", "/api/v1/tickets", map[string]any{"products": "app", "subject": "s", "message": "m"}, "INVALID_FIELD"},
			{"POST", "/api/v1/tickets/1/comments", map[string]any{"message": strings.Repeat("m", 10001)}, "INVALID_FIELD"},
			{"POST", "/api/v1/tickets/1/comments", map[string]any{"message": "a\u202eb"}, "INVALID_FIELD"},
			{"POST", "/api/v1/tickets/abc/comments", map[string]any{"message": "hi"}, "INVALID_FIELD"},
			{"GET", "/api/v1/tickets/1;DROP", nil, "INVALID_FIELD"},
			{"GET", "/api/v1/tickets?limit=0", nil, "INVALID_FIELD"},
			{"GET", "/api/v1/tickets?status=closed", nil, "INVALID_FIELD"},
			{"GET", "/api/v1/tickets?cursor=bm9wZQ", nil, "INVALID_FIELD"},
		} {
			if code := e.doWith(f.acmeC, c.method, c.path, c.body, &apiErr); code != http.StatusBadRequest || apiErr.Code != c.want {
				t.Errorf("%s %s %v: %d %+v, want 400 %s", c.method, c.path, c.body, code, apiErr, c.want)
			}
		}
		for _, c := range []struct {
			path string
			body any
		}{
			{"/api/v1/tickets", map[string]any{"products": []string{"app"}, "subject": "s", "message": "m"}}, // no tenant_id
			{"/api/v1/tickets", map[string]any{"tenant_id": "nope", "products": []string{"app"}, "subject": "s", "message": "m"}},
			{"/api/v1/tickets", map[string]any{"tenant_id": f.acme, "products": []string{"nope"}, "subject": "s", "message": "m"}},
			{"/api/v1/tickets/1/reject", map[string]any{"reason": " "}},
			{"/api/v1/tickets/1/approve", map[string]any{"release": "1.0\n2.0"}},
			{"/api/v1/tickets/x/approve", nil},
		} {
			if code := e.doWith(f.staff, "POST", c.path, c.body, &apiErr); code != http.StatusBadRequest || apiErr.Code != "INVALID_FIELD" {
				t.Errorf("staff POST %s %v: %d %+v, want 400 INVALID_FIELD", c.path, c.body, code, apiErr)
			}
		}
		if e.doWith(f.staff, "GET", "/api/v1/tickets", nil, &list); len(list.Tickets) != 1 || len(list.Tickets[0].History) != 0 {
			t.Fatalf("tickets after the refusals: %+v, want ticket 1 alone (lists carry no history)", list.Tickets)
		}
		if e.doWith(f.staff, "GET", "/api/v1/tickets/1", nil, &one); one.Status != "open" || len(one.History) != 1 {
			t.Fatalf("ticket 1 after the refusals: %s %q", one.Status, one.kinds())
		}

		// Staff open one for Globex; Acme comments; staff approve Acme's
		// and reject Globex's, with the history to show for it.
		var two ticketJSON
		if code := e.doWith(f.staff, "POST", "/api/v1/tickets", map[string]any{"tenant_id": f.globex, "products": []string{"app"}, "subject": "Report", "message": "On the phone today."}, &two); code != http.StatusCreated || two.Number != 2 || two.TenantID != f.globex {
			t.Fatalf("staff open for globex: %d %+v", code, two)
		}
		if code := e.doWith(f.acmeC, "POST", "/api/v1/tickets/1/comments", map[string]any{"message": "Any news?"}, &one); code != 200 || len(one.History) != 2 {
			t.Fatalf("acme comment: %d %q", code, one.kinds())
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/tickets/"+one.ID+"/approve", map[string]any{"release": "1.4.0"}, &one); code != 200 {
			t.Fatalf("approve: %d", code)
		}
		want := []string{"opened by " + f.acmeID, "commented by " + f.acmeID, "approved by " + f.staffID}
		if one.Status != "approved" || one.Release != "1.4.0" || !slices.Equal(one.kinds(), want) || one.History[2].Body["release"] != "1.4.0" {
			t.Errorf("approved: %s %q %q", one.Status, one.Release, one.kinds())
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/tickets/1/approve", nil, &apiErr); code != http.StatusConflict || apiErr.Code != "CONFLICT" {
			t.Errorf("approve again: %d %+v, want 409 CONFLICT", code, apiErr)
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/tickets/2/reject", map[string]any{"reason": "No release of app yet."}, &two); code != 200 || two.Status != "rejected" ||
			two.History[1].Type != "rejected" || two.History[1].Body["reason"] != "No release of app yet." {
			t.Errorf("reject: %d %+v", code, two)
		}
		if code := e.doWith(f.globexC, "GET", "/api/v1/tickets/2", nil, &two); code != 200 || two.Status != "rejected" {
			t.Errorf("globex reading its rejected ticket: %d %s", code, two.Status)
		}
		if e.doWith(f.staff, "GET", "/api/v1/tickets?status=open", nil, &list); len(list.Tickets) != 0 {
			t.Errorf("open tickets: %+v, want none", list.Tickets)
		}
		if e.doWith(f.staff, "GET", "/api/v1/tickets?tenant_id="+f.globex, nil, &list); len(list.Tickets) != 1 || list.Tickets[0].Number != 2 {
			t.Errorf("globex's tickets for staff: %+v", list.Tickets)
		}

		// Each tenant hears of its own tickets only, signed.
		got := acmeHook.wait(3)
		if tt := types(got); !slices.Equal(tt, []string{webhooks.EventTicketApproved, webhooks.EventTicketCommented, webhooks.EventTicketOpened}) {
			t.Errorf("acme's events: %q", tt)
		}
		for _, ev := range got {
			if ev.Data.TenantID != f.acme || ev.Data.TicketID != one.ID || ev.Data.TicketNumber != 1 {
				t.Errorf("acme's event %s: %+v", ev.Type, ev.Data)
			}
			if ev.Type == webhooks.EventTicketApproved && (ev.Data.Actor != f.staffID || ev.Data.Release != "1.4.0" || ev.Data.Status != "approved") {
				t.Errorf("ticket.approved: %+v", ev.Data)
			}
		}
		got = globexHook.wait(2)
		if tt := types(got); !slices.Equal(tt, []string{webhooks.EventTicketOpened, webhooks.EventTicketRejected + "/No release of app yet."}) {
			t.Errorf("globex's events: %q", tt)
		}
		for _, ev := range got {
			if ev.Data.TicketNumber != 2 {
				t.Errorf("globex heard of ticket %d", ev.Data.TicketNumber)
			}
		}
	})
}

// With --tickets-auto-approve=entitled a ticket is approved as it opens,
// by system, and the tenant hears both.
func TestTicketsAutoApprove(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{modify: func(c *server.Config) { c.TicketsAutoApprove = "entitled" }})
		f := newTicketFixture(t, e)
		var tk ticketJSON
		if code := e.doWith(f.acmeC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"app", "agent"}, "subject": "s", "message": "m"}, &tk); code != http.StatusCreated {
			t.Fatalf("open: %d", code)
		}
		if tk.Status != "approved" || !slices.Equal(tk.kinds(), []string{"opened by " + f.acmeID, "approved by system"}) || tk.History[1].Body["policy"] != "entitled" {
			t.Errorf("auto-approved: %s %q %v", tk.Status, tk.kinds(), tk.History)
		}
		var apiErr apiErrorJSON
		if code := e.doWith(f.globexC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"agent"}, "subject": "s", "message": "m"}, &apiErr); code != http.StatusConflict || apiErr.Code != "NOT_ENTITLED" {
			t.Errorf("unentitled under auto-approval: %d %+v", code, apiErr)
		}
	})
}
