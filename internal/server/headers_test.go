package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestSecurityHeaders: every answer of the mounted server, errors and
// unmatched paths included, carries nosniff, framing and referrer
// headers, HSTS over TLS only, and no-store whenever the request carried
// credentials or went to the OAuth endpoints.
func TestSecurityHeaders(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		plain := httptest.NewServer(e.srv.Handler())
		t.Cleanup(plain.Close)

		type call struct {
			name, method, path, body, contentType string
			client                                *http.Client
			base                                  string
			auth                                  bool // sends credentials
			tls                                   bool
		}
		tlsc, authc := e.ts.Client(), e.api
		calls := []call{
			{name: "health", method: "GET", path: "/healthz", client: tlsc},
			{name: "health over plain HTTP", method: "GET", path: "/healthz", client: plain.Client(), base: plain.URL},
			{name: "authenticated list", method: "GET", path: "/api/v1/projects", client: authc, auth: true},
			{name: "authenticated scan list", method: "GET", path: "/api/v1/scans", client: authc, auth: true},
			{name: "authenticated 404", method: "GET", path: "/api/v1/projects/nope/nothing", client: authc, auth: true},
			{name: "unauthenticated API", method: "GET", path: "/api/v1/projects", client: tlsc},
			{name: "unknown path", method: "GET", path: "/nothing-here", client: tlsc},
			{name: "openapi", method: "GET", path: "/api/v1/openapi.json", client: tlsc},
			{name: "too large", method: "POST", path: "/api/v1/projects", body: strings.Repeat(" ", 2<<20), contentType: "application/json", client: tlsc},
			{name: "hook", method: "POST", path: "/hooks/github/nope", body: "{}", contentType: "application/json", client: tlsc},
			{name: "token endpoint without credentials", method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials", contentType: "application/x-www-form-urlencoded", client: tlsc, auth: true},
			{name: "token endpoint with body credentials", method: "POST", path: "/oauth2/token",
				body: url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"y"}}.Encode(), contentType: "application/x-www-form-urlencoded", client: tlsc, auth: true},
			{name: "token endpoint over plain HTTP", method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials", contentType: "application/x-www-form-urlencoded", client: plain.Client(), base: plain.URL, auth: true},
		}
		for _, c := range calls {
			base := c.base
			if base == "" {
				base = e.ts.URL
				c.tls = true
			}
			req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			resp.Body.Close()
			h := resp.Header
			for k, want := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Content-Security-Policy": "frame-ancestors 'none'",
				"Referrer-Policy":         "no-referrer",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s (%d): %s = %q, want %q", c.name, resp.StatusCode, k, got, want)
				}
			}
			if got := h.Get("Strict-Transport-Security"); c.tls != strings.HasPrefix(got, "max-age=63072000") {
				t.Errorf("%s (%d): Strict-Transport-Security = %q over TLS %v", c.name, resp.StatusCode, got, c.tls)
			}
			if got := h.Get("Cache-Control"); c.auth && got != "no-store" {
				t.Errorf("%s (%d): Cache-Control = %q; credentials sent: %v", c.name, resp.StatusCode, got, c.auth)
			}
		}
	})
}
