package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// TestAdminNarrowerScope: a client with the admin scope, which the API
// lets do everything, may ask the token endpoint for a narrower token
// (vigil gate asks for gate:read), and gets only what it asked for; it
// may not ask for scopes the API does not know, nor malformed ones; a
// client without admin still gets only its own scopes.
func TestAdminNarrowerScope(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect, func(c *oauth.Config) { c.Scopes = []string{"admin", "scans:read", "gate:read"} })
		adminID, adminSecret := e.client(t, "root", "admin")
		ciID, ciSecret := e.client(t, "ci", "scans:read")

		tokenFor := func(id, secret, scope string) (int, string, string) {
			t.Helper()
			resp, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, id, secret)
			var er struct {
				Error string `json:"error"`
			}
			json.Unmarshal([]byte(body), &er)
			var ok struct {
				AccessToken string `json:"access_token"`
				Scope       string `json:"scope"`
			}
			json.Unmarshal([]byte(body), &ok)
			if resp.StatusCode == http.StatusOK {
				return resp.StatusCode, ok.AccessToken, ok.Scope
			}
			return resp.StatusCode, "", er.Error
		}

		code, tok, scope := tokenFor(adminID, adminSecret, "gate:read")
		if code != http.StatusOK || scope != "gate:read" {
			t.Fatalf("admin asking for gate:read: %d %q", code, scope)
		}
		if resp, _ := e.get(t, "/api/gate", tok); resp.StatusCode != http.StatusOK {
			t.Errorf("the narrower token at a gate:read route: %d", resp.StatusCode)
		}
		if resp, _ := e.get(t, "/api/scans", tok); resp.StatusCode != http.StatusForbidden {
			t.Errorf("the gate:read token at a scans:read route: %d, want 403", resp.StatusCode)
		}
		if code, _, scope := tokenFor(adminID, adminSecret, "gate:read scans:read"); code != http.StatusOK || scope != "gate:read scans:read" {
			t.Errorf("admin asking for two scopes: %d %q", code, scope)
		}
		if code, _, scope := tokenFor(adminID, adminSecret, "admin"); code != http.StatusOK || scope != "admin" {
			t.Errorf("admin asking for admin: %d %q", code, scope)
		}
		for _, bad := range []string{"projects:everything", `gate:read "quoted"`, "gate:read\\"} {
			if code, _, errCode := tokenFor(adminID, adminSecret, bad); code != http.StatusBadRequest || errCode != "invalid_scope" {
				t.Errorf("admin asking for %q: %d %q, want 400 invalid_scope", bad, code, errCode)
			}
		}
		for _, bad := range []string{"gate:read", "admin", "scans:read gate:read"} {
			if code, _, errCode := tokenFor(ciID, ciSecret, bad); code != http.StatusBadRequest || errCode != "invalid_scope" {
				t.Errorf("scans:read client asking for %q: %d %q, want 400 invalid_scope", bad, code, errCode)
			}
		}
	})
}
