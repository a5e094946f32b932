package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	repapi "github.com/vigil-sec/vigil/reports/api"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	licapi "github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/bundle/bundletest"
)

// linkJSON is a link as the API answers it.
type linkJSON struct {
	ID            string
	TicketNumber  int64  `json:"ticket_number"`
	TenantID      string `json:"tenant_id"`
	Status        string
	Downloads     int
	DownloadsLeft int `json:"downloads_left"`
	Replaces      string
	ReplacedBy    string `json:"replaced_by"`
	Token         string
	URL           string
}

// linkFixture is the tickets' fixture on a server with a bundle store:
// acme's ticket 1 (app) approved, a bundle built for it and a link to it
// made as the approval will make it (Server.Links().Create).
type linkFixture struct {
	*ticketFixture
	bundles *bundletest.Store
	bundle  reports.Bundle
	link    reports.Link
	token   string
	logs    *logBuffer
}

func newLinkFixture(t *testing.T, dialect store.Dialect, modify func(*server.Config)) *linkFixture {
	t.Helper()
	bs, err := bundletest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, logs := newEnv(t, dialect, envConfig{modify: func(c *server.Config) {
		c.Bundles = bs
		if modify != nil {
			modify(c)
		}
	}})
	f := &linkFixture{ticketFixture: newTicketFixture(t, e), bundles: bs, logs: logs}
	var tk ticketJSON
	if code := e.doWith(f.acmeC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"app"}, "subject": "Report", "message": "Please."}, &tk); code != 201 {
		t.Fatalf("open: %d", code)
	}
	if code := e.doWith(f.staff, "POST", "/api/v1/tickets/1/approve", nil, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	f.bundle, err = bs.Add(t.Context(), reports.Bundle{TenantID: f.acme, TenantName: "Acme", TicketID: tk.ID, Ticket: "1", ProductID: "app",
		ProductName: "App", Version: "2.0.0"}, bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX"}`)))
	if err != nil {
		t.Fatal(err)
	}
	f.link, f.token, err = e.srv.Links().Create(t.Context(), reports.Actor{ClientID: f.staffID, Staff: true}, reports.NewLink{Ticket: "1", BundleID: f.bundle.ID})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// page sends an unauthenticated request to a link's page.
func (f *linkFixture) page(method, path string, headers ...string) (int, http.Header, []byte) {
	f.e.t.Helper()
	req, err := http.NewRequest(method, f.e.ts.URL+path, nil)
	if err != nil {
		f.e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.e.ts.Client().Do(req)
	if err != nil {
		f.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// The links through the whole server: the pages under /r/ without a
// token of OAuth, with the server's headers and the links' own; the
// management routes with real tokens, scopes and tenants; the ticket's
// history; and logs that never hold a token.
func TestLinksThroughTheServer(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		f := newLinkFixture(t, dialect, nil)
		e := f.e

		code, h, body := f.page("GET", "/r/"+f.token)
		if code != 200 || !strings.Contains(string(body), "App 2.0.0") {
			t.Fatalf("landing page: %d %s", code, body)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("landing headers: %v", h)
		}
		code, h, body = f.page("POST", "/r/"+f.token+"/download", "Range", "bytes=0-99", "Sec-Fetch-Site", "same-origin")
		if code != 206 || len(body) != 100 || h.Get("Content-Disposition") != "attachment; filename=vigil-report-app-2.0.0-ticket-1.zip" {
			t.Errorf("download: %d, %d bytes, %v", code, len(body), h)
		}
		code, _, body = f.page("POST", "/r/"+f.token+"/download", "Range", "bytes=100-")
		if code != 206 || int64(100+len(body)) != f.bundle.Size {
			t.Errorf("the rest: %d, %d bytes", code, len(body))
		}
		if code, _, _ := f.page("POST", "/r/"+f.token+"/download", "Sec-Fetch-Site", "cross-site"); code != 403 {
			t.Errorf("cross-site download: %d", code)
		}
		if code, _, _ := f.page("GET", "/r/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); code != 404 {
			t.Errorf("unknown token: %d", code)
		}

		// The ticket's links: its tenant's client and staff, not another tenant.
		var list struct{ Links []linkJSON }
		if code := e.doWith(f.acmeC, "GET", "/api/v1/tickets/1/links", nil, &list); code != 200 || len(list.Links) != 1 ||
			list.Links[0].ID != f.link.ID || list.Links[0].Downloads != 1 || list.Links[0].Token != "" {
			t.Errorf("acme lists its links: %d %+v", code, list)
		}
		var apiErr apiErrorJSON
		if code := e.doWith(f.globexC, "GET", "/api/v1/tickets/1/links", nil, &apiErr); code != 404 {
			t.Errorf("globex lists acme's links: %d %+v", code, apiErr)
		}
		var access struct{ Access []reports.LinkAccess }
		if code := e.doWith(f.acmeC, "GET", "/api/v1/links/"+f.link.ID+"/access", nil, &access); code != 200 || len(access.Access) != 3 ||
			access.Access[0].Kind != "view" || access.Access[1].Bytes != 100 || !access.Access[1].Counted || access.Access[2].Counted {
			t.Errorf("acme's access log: %d %+v", code, access)
		}
		if code := e.doWith(f.globexC, "GET", "/api/v1/links/"+f.link.ID+"/access", nil, nil); code != 404 {
			t.Errorf("globex reads acme's access log: %d", code)
		}

		// Revoke and reissue are staff's.
		if code := e.doWith(f.acmeC, "POST", "/api/v1/links/"+f.link.ID+"/revoke", nil, &apiErr); code != 403 || apiErr.Code != "INSUFFICIENT_SCOPE" {
			t.Errorf("acme revokes: %d %+v", code, apiErr)
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/links/"+f.link.ID+"/reissue", map[string]any{"expires_in": 31 * 24 * 3600}, &apiErr); code != 400 ||
			!strings.Contains(apiErr.Message, "expires_in 2678400") {
			t.Errorf("reissue for 31 days: %d %+v", code, apiErr)
		}
		var reissued linkJSON
		if code := e.doWith(f.staff, "POST", "/api/v1/links/"+f.link.ID+"/reissue", map[string]any{"max_downloads": 2}, &reissued); code != 201 ||
			reissued.Token == "" || reissued.Replaces != f.link.ID || reissued.DownloadsLeft != 2 {
			t.Fatalf("reissue: %d %+v", code, reissued)
		}
		if code, _, body := f.page("GET", "/r/"+f.token); code != 410 || !strings.Contains(string(body), "revoked") {
			t.Errorf("the old token: %d %s", code, body)
		}
		if code, _, _ := f.page("GET", "/r/"+reissued.Token); code != 200 {
			t.Errorf("the new token: %d", code)
		}
		var revoked linkJSON
		if code := e.doWith(f.staff, "POST", "/api/v1/links/"+reissued.ID+"/revoke", map[string]any{"reason": "wrong address"}, &revoked); code != 200 || revoked.Status != "revoked" {
			t.Errorf("revoke: %d %+v", code, revoked)
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/links/"+reissued.ID+"/revoke", nil, &apiErr); code != 409 {
			t.Errorf("revoke twice: %d %+v", code, apiErr)
		}

		// The ticket's history has it all, and never a token.
		var tk ticketJSON
		if code := e.doWith(f.acmeC, "GET", "/api/v1/tickets/1", nil, &tk); code != 200 {
			t.Fatalf("ticket: %d", code)
		}
		want := []string{"opened by " + f.acmeID, "approved by " + f.staffID, "link_created by " + f.staffID, "link_viewed by link-holder",
			"link_downloaded by link-holder", "link_reissued by " + f.staffID, "link_viewed by link-holder", "link_revoked by " + f.staffID}
		if got := tk.kinds(); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("history = %q, want %q", got, want)
		}
		raw, _ := json.Marshal(tk)
		logs := f.logs.String()
		for _, token := range []string{f.token, reissued.Token} {
			if bytes.Contains(raw, []byte(token)) {
				t.Error("the ticket's history holds a token")
			}
			if strings.Contains(logs, token) {
				t.Error("the server's log holds a token")
			}
		}
		if !strings.Contains(logs, "/r/{redacted}/download") {
			t.Error("the access log has no redacted link path")
		}
	})
}

// The same token twice in a reissue's Idempotency-Key replays the first
// answer, token included, rather than a second reissue.
func TestLinkReissueIdempotent(t *testing.T) {
	f := newLinkFixture(t, store.SQLite, nil)
	var tokens []string
	for range 2 {
		req, _ := http.NewRequest("POST", f.e.ts.URL+"/api/v1/links/"+f.link.ID+"/reissue", nil)
		req.Header.Set("Idempotency-Key", "reissue-1")
		resp, err := f.staff.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var l linkJSON
		json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("reissue: %d", resp.StatusCode)
		}
		tokens = append(tokens, l.Token)
	}
	if tokens[0] == "" || tokens[0] != tokens[1] {
		t.Errorf("tokens = %q, want the first answer replayed", tokens)
	}
	if code, _, _ := f.page("GET", "/r/"+tokens[0]); code != 200 {
		t.Errorf("the replayed token: %d", code)
	}
	for _, v := range storetest.Dump(t, f.e.db) {
		if strings.Contains(v, tokens[0]) {
			t.Errorf("a stored value holds the token (the replay is kept sealed): %.100q", v)
		}
	}
}

// The links' pages are limited per client address, as the server reads
// it behind its trusted proxies.
func TestLinkPagesRateLimited(t *testing.T) {
	f := newLinkFixture(t, store.SQLite, func(c *server.Config) {
		c.Links = &repapi.LinksConfig{Rate: 0.001, Burst: 2}
		lc := licapi.DefaultConfig()
		lc.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.LicensingAPI = &lc
	})
	for i := range 2 {
		if code, _, _ := f.page("GET", "/r/"+f.token, "X-Forwarded-For", "198.51.100.1"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	code, h, body := f.page("POST", "/r/"+f.token+"/download", "X-Forwarded-For", "198.51.100.1")
	if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(string(body), "RATE_LIMITED") {
		t.Errorf("over the limit: %d %s", code, body)
	}
	if code, _, _ := f.page("GET", "/r/"+f.token, "X-Forwarded-For", "198.51.100.2"); code != 200 {
		t.Errorf("another client: %d", code)
	}
}
