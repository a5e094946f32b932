package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	licapi "github.com/vigil-sec/vigil/licensing/api"
)

// clientWith makes a Management API client of a new OAuth2 client with
// the scopes.
func (e *env) clientWith(scopes ...string) *http.Client {
	e.t.Helper()
	id, secret, err := e.srv.OAuth().CreateClient(context.Background(), "test", scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
	return cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client()))
}

// licensingCall sends a Licensing API request (no OAuth2 token) and
// returns the status, the N-Nonce answered and the body.
func (e *env) licensingCall(method, path string, headers map[string]string, body any) (int, string, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(licapi.HeaderNonce), b
}

type entitlementJSON struct {
	ID             string    `json:"id"`
	TenantID       string    `json:"tenant_id"`
	ProductID      string    `json:"product_id"`
	Seats          int       `json:"seats"`
	ExpiresAt      time.Time `json:"expires_at"`
	LeaseSeconds   int64     `json:"lease_seconds"`
	Status         string    `json:"status"`
	ActivationCode string    `json:"activation_code"`
}

func TestLicensingManagementAndLicensingAPI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)

		var tenant struct{ ID, Name, Status string }
		if code := e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated || tenant.ID == "" || tenant.Status != "active" {
			t.Fatalf("create tenant: %d %+v", code, tenant)
		}
		var product struct{ ID, Name string }
		if code := e.do("POST", "/api/v1/products", map[string]any{"id": "com.example.app", "name": "App"}, &product); code != http.StatusCreated || product.ID != "com.example.app" {
			t.Fatalf("create product: %d %+v", code, product)
		}
		expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		var ent entitlementJSON
		code := e.do("POST", "/api/v1/entitlements", map[string]any{
			"tenant_id": tenant.ID, "product_id": product.ID, "seats": 2, "expires_at": expires, "lease_seconds": 3600,
			"features": map[string]any{"export": map[string]any{"kind": "boolean"}},
		}, &ent)
		if code != http.StatusCreated || ent.ID == "" || ent.ActivationCode == "" || ent.Seats != 2 || ent.LeaseSeconds != 3600 || !ent.ExpiresAt.Equal(expires) {
			t.Fatalf("create entitlement: %d %+v", code, ent)
		}

		// The code is shown once: lists and reads do not carry it.
		var list struct {
			Entitlements []map[string]any `json:"entitlements"`
			NextCursor   *string          `json:"next_cursor"`
		}
		if code := e.do("GET", "/api/v1/entitlements?tenant_id="+tenant.ID, nil, &list); code != 200 || len(list.Entitlements) != 1 || list.NextCursor == nil {
			t.Fatalf("list entitlements: %d %+v", code, list)
		}
		if _, ok := list.Entitlements[0]["activation_code"]; ok {
			t.Errorf("the list shows the activation code: %v", list.Entitlements[0])
		}

		// Activate through the Licensing API on the same server, then
		// refresh once with the nonce.
		hdr := map[string]string{licapi.HeaderTenant: tenant.ID, licapi.HeaderProduct: product.ID}
		status, nonce, body := e.licensingCall("POST", "/api/v1/activate", hdr, map[string]string{"activation_code": ent.ActivationCode, "seat_id": "host-1"})
		var grant struct {
			AccessToken  string `json:"access_token"`
			ActivationID string `json:"activation_id"`
			Entitlement  struct{ ID string }
		}
		json.Unmarshal(body, &grant)
		if status != 200 || nonce == "" || grant.AccessToken == "" || grant.Entitlement.ID != ent.ID {
			t.Fatalf("activate: %d nonce %q %s", status, nonce, body)
		}
		chain := func(method, path, nonce string) (int, string, []byte) {
			return e.licensingCall(method, path, map[string]string{
				licapi.HeaderTenant: tenant.ID, licapi.HeaderNonce: nonce, "Authorization": "Bearer " + grant.AccessToken,
			}, nil)
		}
		status, next, body := chain("POST", "/api/v1/activation/refresh", nonce)
		old := grant.AccessToken
		json.Unmarshal(body, &grant)
		if status != 200 || next == "" || next == nonce || grant.AccessToken == old {
			t.Fatalf("refresh: %d nonce %q %s", status, next, body)
		}
		if status, _, body := chain("GET", "/api/v1/activation", nonce); status != http.StatusConflict || !bytes.Contains(body, []byte("NONCE_MISMATCH")) {
			t.Errorf("a replayed nonce: %d %s", status, body)
		}
		status, next, body = chain("GET", "/api/v1/activation", next)
		if status != 200 || next == "" {
			t.Fatalf("GET activation with the new nonce: %d %s", status, body)
		}
		// A Management API token is not a Licensing API token.
		if status := e.do("GET", "/api/v1/activation", nil, nil); status != http.StatusUnauthorized {
			t.Errorf("Licensing API with a Management API token: %d, want 401", status)
		}

		// Suspending the entitlement stops activations.
		var susp entitlementJSON
		if code := e.do("POST", "/api/v1/entitlements/"+ent.ID+"/suspend", nil, &susp); code != 200 || susp.Status != "suspended" || susp.ActivationCode != "" {
			t.Fatalf("suspend entitlement: %d %+v", code, susp)
		}
		if status, _, body := e.licensingCall("POST", "/api/v1/activate", hdr, map[string]string{"activation_code": ent.ActivationCode, "seat_id": "host-2"}); status != http.StatusForbidden || !bytes.Contains(body, []byte("SUSPENDED")) {
			t.Errorf("activate a suspended entitlement: %d %s", status, body)
		}
		if code := e.do("POST", "/api/v1/entitlements/"+ent.ID+"/resume", nil, &susp); code != 200 || susp.Status != "active" {
			t.Errorf("resume entitlement: %d %+v", code, susp)
		}
		if code := e.do("POST", "/api/v1/tenants/"+tenant.ID+"/suspend", nil, &tenant); code != 200 || tenant.Status != "suspended" {
			t.Errorf("suspend tenant: %d %+v", code, tenant)
		}
		if status, _, body := chain("POST", "/api/v1/activation/refresh", next); status != http.StatusForbidden {
			t.Errorf("refresh under a suspended tenant: %d %s", status, body)
		}
		if status, _, _ := e.licensingCall("DELETE", "/api/v1/activation", map[string]string{licapi.HeaderTenant: tenant.ID, "Authorization": "Bearer " + grant.AccessToken}, nil); status != http.StatusNoContent {
			t.Errorf("deactivate: %d", status)
		}
		if code := e.do("POST", "/api/v1/tenants/nope/suspend", nil, nil); code != http.StatusNotFound {
			t.Errorf("suspend an unknown tenant: %d, want 404", code)
		}
	})
}

func TestLicensingValidationAndPaging(t *testing.T) {
	e := setup(t, store.SQLite)
	var tenant, product struct{ ID string }
	e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant)
	e.do("POST", "/api/v1/products", map[string]any{"name": "App"}, &product)

	for _, tc := range []struct {
		name string
		path string
		body map[string]any
		want string // in the message
	}{
		{"empty tenant name", "/api/v1/tenants", map[string]any{"name": "  "}, "name is required"},
		{"bad product id", "/api/v1/products", map[string]any{"id": "-x", "name": "App"}, `id "-x"`},
		{"no seats", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID}, "seats 0"},
		{"unknown tenant", "/api/v1/entitlements", map[string]any{"tenant_id": "nope", "product_id": product.ID, "seats": 1}, `tenant_id "nope"`},
		{"unknown product", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": "nope", "seats": 1}, `product_id "nope"`},
		{"past expiry", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 1, "expires_at": "2020-01-01T00:00:00Z"}, "not in the future"},
		{"bad feature", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 1, "features": map[string]any{"x": map[string]any{"kind": "counted"}}}, `feature "x"`},
		{"unknown field", "/api/v1/tenants", map[string]any{"name": "A", "bogus": 1}, "bogus"},
	} {
		var got struct{ Code, Message string }
		code := e.do("POST", tc.path, tc.body, &got)
		if code != http.StatusBadRequest || got.Code == "" || !bytes.Contains([]byte(got.Message), []byte(tc.want)) {
			t.Errorf("%s: %d %+v, want 400 mentioning %q", tc.name, code, got, tc.want)
		}
	}

	for _, n := range []string{"B", "C", "D"} {
		e.do("POST", "/api/v1/tenants", map[string]any{"name": n}, nil)
	}
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		var page struct {
			Tenants    []struct{ Name string }
			NextCursor string `json:"next_cursor"`
		}
		if code := e.do("GET", "/api/v1/tenants?limit=3&cursor="+cursor, nil, &page); code != 200 || pages > 2 {
			t.Fatalf("page %d: %d", pages, code)
		}
		for _, tn := range page.Tenants {
			names = append(names, tn.Name)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if got := len(names); got != 4 || names[0] != "Acme" || names[3] != "D" {
		t.Errorf("paged tenants: %v", names)
	}
	if code := e.do("GET", "/api/v1/tenants?cursor=zzz", nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad cursor: %d, want 400", code)
	}
}

func TestLicensingScopes(t *testing.T) {
	e := setup(t, store.SQLite)
	scans := e.clientWith(server.ScopeScansRead)
	read := e.clientWith(server.ScopeLicensingRead)
	admin := e.clientWith(server.ScopeLicensingAdmin)

	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/tenants"}, {"POST", "/api/v1/tenants"}, {"GET", "/api/v1/products"}, {"POST", "/api/v1/products"},
		{"GET", "/api/v1/entitlements"}, {"POST", "/api/v1/entitlements"}, {"POST", "/api/v1/entitlements/x/suspend"}, {"POST", "/api/v1/tenants/x/suspend"},
	} {
		var body any
		if r.method == "POST" {
			body = map[string]any{}
		}
		var got struct{ Code string }
		if code := e.doWith(scans, r.method, r.path, body, &got); code != http.StatusForbidden || got.Code != "INSUFFICIENT_SCOPE" {
			t.Errorf("%s %s with scans:read: %d %q, want 403 INSUFFICIENT_SCOPE", r.method, r.path, code, got.Code)
		}
		wantRead := http.StatusForbidden
		if r.method == "GET" {
			wantRead = http.StatusOK
		}
		if code := e.doWith(read, r.method, r.path, body, nil); code != wantRead {
			t.Errorf("%s %s with licensing:read: %d, want %d", r.method, r.path, code, wantRead)
		}
	}
	var tenant struct{ ID string }
	if code := e.doWith(admin, "POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant); code != http.StatusCreated {
		t.Errorf("create a tenant with licensing:admin: %d", code)
	}
	if code := e.doWith(admin, "GET", "/api/v1/tenants/"+tenant.ID, nil, nil); code != 200 {
		t.Errorf("licensing:admin reads: %d", code)
	}
	if code := e.doWith(admin, "GET", "/api/v1/scans", nil, nil); code != http.StatusForbidden {
		t.Errorf("licensing:admin reads scans: %d, want 403", code)
	}
	if code := e.doWith(e.ts.Client(), "GET", "/api/v1/tenants", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
}
