package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		id, secret := e.client(t, "ci", "scans:read", "gate:read")
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client())

		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			t.Run(fmt.Sprint("style", int(style)), func(t *testing.T) {
				cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token", AuthStyle: style}
				tok, err := cc.Token(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if tok.TokenType != "Bearer" || tok.Extra("scope") != "gate:read scans:read" {
					t.Errorf("token type %q scope %v, want Bearer and all the client's scopes", tok.TokenType, tok.Extra("scope"))
				}
				resp, err := cc.Client(ctx).Get(e.ts.URL + "/api/scans")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /api/scans with the token: %s", resp.Status)
				}

				// A subset of the client's scopes.
				cc.Scopes = []string{"scans:read"}
				tok, err = cc.Token(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if tok.Extra("scope") != "scans:read" {
					t.Errorf("scope = %v, want scans:read", tok.Extra("scope"))
				}
				if resp, _ := e.get(t, "/api/scans", tok.AccessToken); resp.StatusCode != http.StatusOK {
					t.Errorf("GET /api/scans: %s", resp.Status)
				}
				resp, body := e.get(t, "/api/gate", tok.AccessToken)
				if resp.StatusCode != http.StatusForbidden ||
					!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) ||
					decode(t, body)["code"] != "INSUFFICIENT_SCOPE" {
					t.Errorf("GET /api/gate with a scans:read token: %s %q %s", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
				}

				// A scope the client does not have.
				cc.Scopes = []string{"scans:read", "admin"}
				_, err = cc.Token(ctx)
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "invalid_scope" || re.Response.StatusCode != http.StatusBadRequest {
					t.Errorf("token with a scope not granted: %v, want invalid_scope", err)
				}
			})
		}
	})
}

func TestTokenResponse(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		id, secret := e.client(t, "ci", "scans:read")

		// RFC 6749 §2.3.1: the ID and secret are form-urlencoded inside
		// Basic; encode every byte to check the server decodes them.
		pct := func(s string) string {
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				fmt.Fprintf(&b, "%%%02X", s[i])
			}
			return b.String()
		}
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		req.SetBasicAuth(pct(id), pct(secret))
		resp, body := e.do(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token: %s %s", resp.Status, body)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		if got := resp.Header.Get("Pragma"); got != "no-cache" {
			t.Errorf("Pragma = %q, want no-cache", got)
		}
		m := decode(t, body)
		if m["token_type"] != "Bearer" || m["expires_in"] != float64(600) || m["scope"] != "scans:read" || m["access_token"] == "" {
			t.Errorf("token response = %v", m)
		}

		tok, err := jwt.ParseSigned(m["access_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if h := tok.Headers[0]; h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" {
			t.Errorf("header typ %v kid %q, want at+jwt and a kid", h.ExtraHeaders["typ"], h.KeyID)
		}
		var claims map[string]any
		tok.UnsafeClaimsWithoutVerification(&claims)
		for _, k := range []string{"iss", "sub", "aud", "client_id", "iat", "exp", "jti", "scope"} {
			if claims[k] == nil {
				t.Errorf("claim %s missing from %v", k, claims)
			}
		}
		if claims["sub"] != id || claims["client_id"] != id || claims["aud"] != e.cfg.Audience || claims["iss"] != e.cfg.Issuer {
			t.Errorf("claims = %v", claims)
		}
	})
}

func TestTokenRequestErrors(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		id, secret := e.client(t, "ci", "scans:read")
		good := func() url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		}
		tests := []struct {
			name        string
			method      string
			contentType string
			query       string
			body        string
			basic       bool
			wantStatus  int
			wantCode    string
		}{
			{"GET", http.MethodGet, "application/x-www-form-urlencoded", "", good().Encode(), false, 405, "invalid_request"},
			{"JSON body", http.MethodPost, "application/json", "", `{"grant_type":"client_credentials"}`, false, 400, "invalid_request"},
			{"no grant_type", http.MethodPost, "", "", "client_id=" + id + "&client_secret=" + secret, false, 400, "invalid_request"},
			{"password grant", http.MethodPost, "", "", strings.Replace(good().Encode(), "client_credentials", "password", 1), false, 400, "unsupported_grant_type"},
			{"repeated scope", http.MethodPost, "", "", good().Encode() + "&scope=a&scope=b", false, 400, "invalid_request"},
			{"basic and post", http.MethodPost, "", "", good().Encode(), true, 400, "invalid_request"},
			{"secret in query", http.MethodPost, "", "client_secret=" + secret, "grant_type=client_credentials&client_id=" + id, false, 400, "invalid_request"},
			{"body too large", http.MethodPost, "", "", good().Encode() + "&pad=" + strings.Repeat("x", 70<<10), false, 400, "invalid_request"},
			{"no credentials", http.MethodPost, "", "", "grant_type=client_credentials", false, 401, "invalid_client"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(tt.method, e.ts.URL+"/oauth2/token?"+tt.query, strings.NewReader(tt.body))
				ct := tt.contentType
				if ct == "" {
					ct = "application/x-www-form-urlencoded"
				}
				req.Header.Set("Content-Type", ct)
				if tt.basic {
					req.SetBasicAuth(id, secret)
				}
				resp, body := e.do(t, req)
				if resp.StatusCode != tt.wantStatus || decode(t, body)["error"] != tt.wantCode {
					t.Errorf("got %s %s, want %d %s", resp.Status, body, tt.wantStatus, tt.wantCode)
				}
				if strings.Contains(body, secret) {
					t.Errorf("the response echoes the secret: %s", body)
				}
			})
		}
	})
}

func TestInvalidClient(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ctx := context.Background()
		id, secret := e.client(t, "ci", "scans:read")
		revokedID, revokedSecret := e.client(t, "old", "scans:read")
		if err := e.srv.RevokeClient(ctx, revokedID); err != nil {
			t.Fatal(err)
		}
		wrong := strings.ToUpper(secret[:8]) + secret[8:] + "x"
		tests := []struct{ name, id, secret string }{
			{"wrong secret", id, wrong},
			{"unknown client", "no-such-client", secret},
			{"secret as client id", secret, secret},
			{"revoked client", revokedID, revokedSecret},
		}
		for _, tt := range tests {
			for _, basic := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/basic=%v", tt.name, basic), func(t *testing.T) {
					form := url.Values{"grant_type": {"client_credentials"}}
					var resp *http.Response
					var body string
					if basic {
						resp, body = e.post(t, "/oauth2/token", form, tt.id, tt.secret)
					} else {
						form.Set("client_id", tt.id)
						form.Set("client_secret", tt.secret)
						resp, body = e.post(t, "/oauth2/token", form, "", "")
					}
					if resp.StatusCode != http.StatusUnauthorized || decode(t, body)["error"] != "invalid_client" {
						t.Errorf("got %s %s, want 401 invalid_client", resp.Status, body)
					}
					if basic && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
						t.Errorf("WWW-Authenticate = %q, want a Basic challenge", resp.Header.Get("WWW-Authenticate"))
					}
					if strings.Contains(body, tt.secret) {
						t.Errorf("the response echoes the secret: %s", body)
					}
				})
			}
		}
		if _, err := e.srv.Verify(ctx, "x", ""); err == nil {
			t.Error("Verify(garbage) succeeded")
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "authentication failed") {
			t.Errorf("the failures were not logged:\n%s", logs)
		}
		for _, s := range []string{secret, wrong, revokedSecret} {
			if strings.Contains(logs, s) {
				t.Errorf("a secret is in the log:\n%s", logs)
			}
		}
	})
}

func TestSecretStoredHashed(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		id, secret := e.client(t, "ci", "scans:read")
		if len(secret) < 43 { // 32 bytes, base64url
			t.Errorf("secret %d characters long, want at least 43", len(secret))
		}
		q := "SELECT name, secret_hash, scopes FROM oauth_clients WHERE id = ?"
		if dialect == store.Postgres {
			q = strings.Replace(q, "?", "$1", 1)
		}
		var name, hash, scopes string
		if err := e.db.SQL().QueryRow(q, id).Scan(&name, &hash, &scopes); err != nil {
			t.Fatal(err)
		}
		if hash == secret || strings.Contains(hash, secret) || !strings.HasPrefix(hash, "hmac-sha256-sk$") {
			t.Errorf("secret_hash = %q for secret %q: want an HMAC, not the secret", hash, secret)
		}
		if name != "ci" || scopes != "scans:read" {
			t.Errorf("row = %q %q", name, scopes)
		}
		cs, err := e.srv.ListClients(context.Background())
		if err != nil || len(cs) != 1 || cs[0].ID != id {
			t.Errorf("ListClients() = %+v, %v", cs, err)
		}
	})
}
