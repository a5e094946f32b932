package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// jwtClaims decodes a JWT's payload without checking it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTenantClient: a client bound to a tenant gets tokens that carry the
// tenant (the vigil_tenant claim, in Verify's claims and in
// introspection); it holds only the tenant scopes, never admin; the
// tenant must exist; clients bound to none carry no tenant.
func TestTenantClient(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect, func(c *oauth.Config) { c.TenantScopes = []string{"tickets:write"} })
		ctx := t.Context()
		tn, err := e.db.CreateTenant(ctx, licensing.Tenant{Name: "Acme"})
		if err != nil {
			t.Fatal(err)
		}
		id, secret, err := e.srv.CreateTenantClient(ctx, "acme portal", tn.ID, []string{"tickets:write"})
		if err != nil {
			t.Fatal(err)
		}
		tok := e.token(t, id, secret)
		if got := jwtClaims(t, tok)[oauth.TenantClaim]; got != tn.ID {
			t.Errorf("%s claim = %v, want %s", oauth.TenantClaim, got, tn.ID)
		}
		c, err := e.srv.Verify(ctx, tok, "tickets:write")
		if err != nil || c.TenantID != tn.ID || c.ClientID != id {
			t.Fatalf("Verify = %+v, %v; want the tenant %s", c, err, tn.ID)
		}
		// Verified again from the cache, the tenant is still there.
		if c, err := e.srv.Verify(ctx, tok, ""); err != nil || c.TenantID != tn.ID {
			t.Errorf("second Verify = %+v, %v", c, err)
		}
		resp, body := e.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, id, secret)
		if m := decode(t, body); resp.StatusCode != http.StatusOK || m["active"] != true || m[oauth.TenantClaim] != tn.ID {
			t.Errorf("introspection = %d %v, want active with the tenant", resp.StatusCode, m)
		}
		cs, err := e.srv.ListClients(ctx)
		if err != nil || len(cs) != 1 || cs[0].TenantID != tn.ID {
			t.Errorf("ListClients = %+v, %v", cs, err)
		}

		plainID, plainSecret := e.client(t, "staff", "admin")
		plain := e.token(t, plainID, plainSecret)
		if _, ok := jwtClaims(t, plain)[oauth.TenantClaim]; ok {
			t.Errorf("an unbound client's token carries %s", oauth.TenantClaim)
		}
		if c, err := e.srv.Verify(ctx, plain, ""); err != nil || c.TenantID != "" {
			t.Errorf("unbound Verify = %+v, %v", c, err)
		}

		for _, scopes := range [][]string{{"admin"}, {"tickets:write", "scans:read"}} {
			if _, _, err := e.srv.CreateTenantClient(ctx, "bad", tn.ID, scopes); !errors.Is(err, oauth.ErrInvalidScope) {
				t.Errorf("tenant client with %q: %v, want ErrInvalidScope", scopes, err)
			}
		}
		if _, _, err := e.srv.CreateTenantClient(ctx, "ghost", "no-such-tenant", []string{"tickets:write"}); !errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("tenant client of an unknown tenant: %v, want ErrNotFound", err)
		}
		// A tenant client may not ask for a wider token either.
		resp, body = e.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, id, secret)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_scope") {
			t.Errorf("tenant client asking for admin: %d %s", resp.StatusCode, body)
		}
		if cs, _ := e.srv.ListClients(ctx); len(cs) != 2 {
			t.Errorf("%d clients after the refusals, want 2", len(cs))
		}
	})
}

// Without Config.TenantScopes a tenant client may hold any scope but
// admin.
func TestTenantClientDefaultScopes(t *testing.T) {
	t.Parallel()
	e := setup(t, store.SQLite)
	ctx := t.Context()
	tn, err := e.db.CreateTenant(ctx, licensing.Tenant{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.srv.CreateTenantClient(ctx, "ok", tn.ID, []string{"scans:read"}); err != nil {
		t.Errorf("scans:read: %v", err)
	}
	if _, _, err := e.srv.CreateTenantClient(ctx, "admin", tn.ID, []string{"scans:read", "admin"}); !errors.Is(err, oauth.ErrInvalidScope) {
		t.Errorf("admin: %v, want ErrInvalidScope", err)
	}
}
