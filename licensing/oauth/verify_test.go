package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// forge signs claims with the key, the kid and the typ header.
func forge(t *testing.T, key any, alg jose.SignatureAlgorithm, kid, typ string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// serverKey reads the server's signing key from the database (sealed
// there: the server opens it).
func serverKey(t *testing.T, e *env) (string, *ecdsa.PrivateKey) {
	t.Helper()
	ks, err := e.db.ListOAuthKeys(context.Background(), oauth.KeySigning)
	if err != nil || len(ks) != 1 {
		t.Fatalf("ListOAuthKeys() = %d keys, %v", len(ks), err)
	}
	k, err := oauth.OpenSigningKey(context.Background(), e.srv, ks[0])
	if err != nil {
		t.Fatal(err)
	}
	return ks[0].ID, k
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e := setup(t, dialect)
		id, secret := e.client(t, "ci", "scans:read")
		tok := e.token(t, id, secret)

		c, err := e.srv.Verify(ctx, tok, "scans:read")
		if err != nil {
			t.Fatalf("Verify(good token) = %v", err)
		}
		if c.ClientID != id || c.Subject != id || !c.HasScope("scans:read") || c.ID == "" {
			t.Errorf("claims = %+v", c)
		}
		if _, err := e.srv.Verify(ctx, tok, "gate:read"); !errors.Is(err, oauth.ErrInsufficientScope) {
			t.Errorf("Verify(scope not granted) = %v, want ErrInsufficientScope", err)
		}

		kid, key := serverKey(t, e)
		now := e.clock.Now()
		claims := func() map[string]any {
			return map[string]any{
				"iss": e.cfg.Issuer, "sub": id, "aud": e.cfg.Audience, "client_id": id, "scope": "scans:read",
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "forged",
			}
		}
		if _, err := e.srv.Verify(ctx, forge(t, key, jose.ES256, kid, "at+jwt", claims()), ""); err != nil {
			t.Fatalf("Verify(token built like the server's) = %v; the cases below would prove nothing", err)
		}
		with := func(k string, v any) map[string]any {
			c := claims()
			c[k] = v
			return c
		}
		otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		elevated := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"scans:read"`, `"admin"`, 1)))
		sig := []byte(parts[2])
		sig[5] ^= 1
		noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + kid + `"}`))
		hsHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"` + kid + `"}`))

		tests := map[string]string{
			"wrong audience":     forge(t, key, jose.ES256, kid, "at+jwt", with("aud", "another-api")),
			"wrong issuer":       forge(t, key, jose.ES256, kid, "at+jwt", with("iss", "https://evil.test")),
			"typ JWT":            forge(t, key, jose.ES256, kid, "JWT", claims()),
			"no exp":             forge(t, key, jose.ES256, kid, "at+jwt", with("exp", nil)),
			"sub is not client":  forge(t, key, jose.ES256, kid, "at+jwt", with("sub", "someone")),
			"issued in future":   forge(t, key, jose.ES256, kid, "at+jwt", with("iat", now.Add(time.Hour).Unix())),
			"other key same kid": forge(t, otherKey, jose.ES256, kid, "at+jwt", claims()),
			"tampered signature": parts[0] + "." + parts[1] + "." + string(sig),
			"tampered payload":   parts[0] + "." + elevated + "." + parts[2],
			"alg none":           noneHeader + "." + parts[1] + ".",
			"alg HS256":          hsHeader + "." + parts[1] + "." + parts[2],
			"garbage":            "not.a.token",
		}
		for name, bad := range tests {
			if _, err := e.srv.Verify(ctx, bad, ""); !errors.Is(err, oauth.ErrInvalidToken) {
				t.Errorf("%s: Verify() = %v, want ErrInvalidToken", name, err)
			}
		}

		// A server for another audience refuses the token.
		other := e.cfg
		other.Audience = "another-api"
		srv2, err := oauth.New(ctx, e.db, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv2.Verify(ctx, tok, ""); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Errorf("Verify() for another audience = %v, want ErrInvalidToken", err)
		}

		// Within the leeway the token still works; after it, it does not.
		e.clock.Add(e.cfg.TokenTTL + e.cfg.Leeway/2)
		if _, err := e.srv.Verify(ctx, tok, ""); err != nil {
			t.Errorf("Verify() within the leeway = %v", err)
		}
		e.clock.Add(e.cfg.Leeway)
		if _, err := e.srv.Verify(ctx, tok, ""); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("Verify(expired) = %v, want expired", err)
		}
		resp, body := e.get(t, "/api/scans", tok)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
			decode(t, body)["code"] != "INVALID_TOKEN" {
			t.Errorf("GET with an expired token: %s %q %s", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
		}
		resp, body = e.get(t, "/api/scans", "")
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="vigil"` {
			t.Errorf("GET without a token: %s %q %s", resp.Status, resp.Header.Get("WWW-Authenticate"), body)
		}
	})
}

func TestRevocationAndIntrospection(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e := setup(t, dialect)
		aID, aSecret := e.client(t, "a", "scans:read")
		bID, bSecret := e.client(t, "b", "gate:read")
		adminID, adminSecret := e.client(t, "root", "admin")
		tok := e.token(t, aID, aSecret)

		introspect := func(id, secret, token string) map[string]any {
			t.Helper()
			resp, body := e.post(t, "/oauth2/introspect", url.Values{"token": {token}}, id, secret)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("introspect: %s %v %s", resp.Status, resp.Header, body)
			}
			return decode(t, body)
		}
		revoke := func(id, secret, token string) {
			t.Helper()
			resp, body := e.post(t, "/oauth2/revoke", url.Values{"token": {token}, "token_type_hint": {"access_token"}}, id, secret)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %s %s", resp.Status, body)
			}
		}

		got := introspect(aID, aSecret, tok)
		if got["active"] != true || got["client_id"] != aID || got["sub"] != aID || got["scope"] != "scans:read" ||
			got["token_type"] != "Bearer" || got["exp"] == nil || got["iat"] == nil {
			t.Errorf("introspect(own token) = %v", got)
		}
		if got := introspect(bID, bSecret, tok); got["active"] != false || len(got) != 1 {
			t.Errorf("introspect(another client's token) = %v, want only active: false", got)
		}
		if got := introspect(adminID, adminSecret, tok); got["active"] != true {
			t.Errorf("introspect by an admin client = %v, want active", got)
		}
		if got := introspect(aID, aSecret, "garbage"); got["active"] != false || len(got) != 1 {
			t.Errorf("introspect(garbage) = %v", got)
		}
		if resp, body := e.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, aID, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("introspect with a wrong secret: %s %s", resp.Status, body)
		}

		// Another client cannot revoke the token; its own client can.
		revoke(bID, bSecret, tok)
		if resp, _ := e.get(t, "/api/scans", tok); resp.StatusCode != http.StatusOK {
			t.Errorf("after another client's revocation: %s, want 200", resp.Status)
		}
		revoke(aID, aSecret, tok)
		revoke(aID, aSecret, tok)       // again: still 200
		revoke(aID, aSecret, "garbage") // RFC 7009 §2.2: 200
		if got := introspect(aID, aSecret, tok); got["active"] != false {
			t.Errorf("introspect(revoked) = %v", got)
		}
		resp, body := e.get(t, "/api/scans", tok)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("GET with a revoked token: %s %s", resp.Status, body)
		}
		// Other tokens of the client still work.
		if resp, _ := e.get(t, "/api/scans", e.token(t, aID, aSecret)); resp.StatusCode != http.StatusOK {
			t.Errorf("GET with a fresh token: %s", resp.Status)
		}

		// Revoking the client kills its tokens.
		tokB := e.token(t, bID, bSecret)
		if err := e.srv.RevokeClient(ctx, bID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.Verify(ctx, tokB, ""); !errors.Is(err, oauth.ErrInvalidToken) || !errors.Is(err, oauth.ErrClientRevoked) {
			t.Errorf("Verify(token of a revoked client) = %v, want ErrClientRevoked (an ErrInvalidToken)", err)
		}
		// The API says the client is gone, not to fetch a new token.
		resp, body = e.get(t, "/api/scans", tokB)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "CLIENT_REVOKED") || strings.Contains(string(body), "get a new token") {
			t.Errorf("GET with a revoked client's token: %s %s, want 401 CLIENT_REVOKED", resp.Status, body)
		}
		// A token that is merely revoked is told to get a new one.
		if resp, body := e.get(t, "/api/scans", tok); !strings.Contains(string(body), "get a new token") {
			t.Errorf("GET with a revoked token: %s %s, want advice to get a new token", resp.Status, body)
		}
		if err := e.srv.RevokeClient(ctx, "nope"); !errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("RevokeClient(unknown) = %v, want ErrNotFound", err)
		}

		// Revocations are pruned once the token has expired.
		e.clock.Add(e.cfg.TokenTTL + 2*e.cfg.Leeway + time.Second)
		if n, err := e.srv.PruneRevokedTokens(ctx); err != nil || n != 1 {
			t.Errorf("PruneRevokedTokens() = %d, %v; want 1", n, err)
		}
	})
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e := setup(t, dialect)
		id, secret := e.client(t, "ci", "scans:read")
		raw := e.token(t, id, secret)

		resp, body := e.get(t, "/.well-known/jwks.json", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("jwks: %s", resp.Status)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(body), &set); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(body, `"d"`) {
			t.Errorf("the key set holds private key material: %s", body)
		}
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(tok.Headers[0].KeyID)
		if len(keys) != 1 || !keys[0].IsPublic() || keys[0].Algorithm != "ES256" {
			t.Fatalf("keys for kid %q: %+v", tok.Headers[0].KeyID, keys)
		}
		var c jwt.Claims
		if err := tok.Claims(keys[0].Key, &c); err != nil {
			t.Fatalf("the JWKS key does not verify the token: %v", err)
		}
		if err := c.Validate(jwt.Expected{Issuer: e.cfg.Issuer, AnyAudience: jwt.Audience{e.cfg.Audience}, Subject: id}); err != nil {
			t.Error(err)
		}

		// A restarted server keeps the key: old tokens still verify.
		srv2, err := oauth.New(ctx, e.db, e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv2.Verify(ctx, raw, "scans:read"); err != nil {
			t.Errorf("Verify() after a restart = %v", err)
		}
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		const burst = 3
		e := setup(t, dialect, func(c *oauth.Config) { c.RateBurst = burst })
		id, secret := e.client(t, "ci", "scans:read")
		h := e.srv.TokenHandler()
		send := func(addr string) *httptest.ResponseRecorder {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = addr
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w
		}
		for i := range burst {
			if w := send("192.0.2.1:1000"); w.Code != http.StatusOK {
				t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
			}
		}
		w := send("192.0.2.1:1001")
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("request %d: %d, want 429", burst+1, w.Code)
		}
		if s, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After = %q, want whole seconds", w.Header().Get("Retry-After"))
		}
		if w := send("192.0.2.2:1000"); w.Code != http.StatusOK {
			t.Errorf("another address: %d, want 200", w.Code)
		}
		e.clock.Add(time.Second) // one token back at 1/s
		if w := send("192.0.2.1:1000"); w.Code != http.StatusOK {
			t.Errorf("after a second: %d, want 200", w.Code)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := oauth.DefaultConfig()
	valid.Pepper = []byte(strings.Repeat("p", 32))
	if err := valid.Validate(); err != nil {
		t.Fatalf("DefaultConfig() with a pepper: Validate() = %v", err)
	}
	// No pepper: the server would have to keep one in the database.
	if err := oauth.DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "pepper") {
		t.Errorf("DefaultConfig() without a pepper: Validate() = %v, want an error naming the pepper", err)
	}
	tests := map[string]func(*oauth.Config){
		"no issuer":    func(c *oauth.Config) { c.Issuer = "" },
		"no audience":  func(c *oauth.Config) { c.Audience = "" },
		"zero TTL":     func(c *oauth.Config) { c.TokenTTL = 0 },
		"long TTL":     func(c *oauth.Config) { c.TokenTTL = 48 * time.Hour },
		"leeway":       func(c *oauth.Config) { c.Leeway = -time.Second },
		"short pepper": func(c *oauth.Config) { c.Pepper = []byte("short") },
		"no rate":      func(c *oauth.Config) { c.RateLimit = 0 },
		"no burst":     func(c *oauth.Config) { c.RateBurst = 0 },
	}
	for name, edit := range tests {
		c := valid
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
}

func TestPepper(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		pepper := []byte(strings.Repeat("p", 32))
		e := setup(t, dialect, func(c *oauth.Config) { c.Pepper = pepper })
		id, secret := e.client(t, "ci", "scans:read")
		e.token(t, id, secret)
		if ks, _ := e.db.ListOAuthKeys(ctx, oauth.KeyPepper); len(ks) != 0 {
			t.Errorf("a pepper was stored although the config has one")
		}
		// Another pepper (another installation's seal key) does not start:
		// it opens no signing key, and would verify no secret.
		cfg := e.cfg
		cfg.Pepper = []byte(strings.Repeat("q", 32))
		if _, err := oauth.New(ctx, e.db, cfg); err == nil || !strings.Contains(err.Error(), "seal key") {
			t.Errorf("start with another pepper: %v, want an error naming the seal key", err)
		}
		// On a store of its own holding this client's hash, the secret fails.
		stored, err := e.db.GetOAuthClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		other := storetest.Open(t, dialect)
		if _, err := other.CreateOAuthClient(ctx, oauth.StoredClient{ID: id, Name: "ci", SecretHash: stored.SecretHash}); err != nil {
			t.Fatal(err)
		}
		srv2, err := oauth.New(ctx, other, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		srv2.Register(mux)
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("token with another pepper: %d, want 401", w.Code)
		}
	})
}

// TestRevocationByAnotherProcess: a token verified once is trusted for
// RevocationRecheck; a revocation made by another process (a second
// server on the same store, as `vigil clients revoke` is) takes effect
// once that has passed, and a token past its expiry is refused even while
// cached.
func TestRevocationByAnotherProcess(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e := setup(t, dialect)
		id, secret := e.client(t, "a", "scans:read")
		tok := e.token(t, id, secret)
		if _, err := e.srv.Verify(ctx, tok, ""); err != nil {
			t.Fatal(err)
		}
		other, err := oauth.New(ctx, e.db, e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := other.RevokeClient(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Verify(ctx, tok, ""); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Errorf("the revoking server accepts the token: %v", err)
		}
		if _, err := e.srv.Verify(ctx, tok, ""); err != nil {
			t.Errorf("within RevocationRecheck the cached token is trusted: %v", err)
		}
		e.clock.Add(e.cfg.RevocationRecheck + time.Millisecond)
		if _, err := e.srv.Verify(ctx, tok, ""); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Errorf("after RevocationRecheck: %v, want the revocation seen", err)
		}

		// Expiry is checked on every call, cached or not.
		id2, secret2 := e.client(t, "b", "scans:read")
		tok2 := e.token(t, id2, secret2)
		if _, err := e.srv.Verify(ctx, tok2, ""); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(e.cfg.TokenTTL + e.cfg.Leeway + time.Second)
		if _, err := e.srv.Verify(ctx, tok2, ""); !errors.Is(err, oauth.ErrInvalidToken) {
			t.Errorf("an expired cached token: %v, want refused", err)
		}
	})
}

// Behind a trusted proxy the limit counts the client X-Forwarded-For
// names; from any other peer the header is ignored, so a client cannot
// escape its limit by naming another address.
func TestRateLimitTrustedProxy(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		const burst = 2
		e := setup(t, dialect, func(c *oauth.Config) {
			c.RateBurst = burst
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		})
		id, secret := e.client(t, "ci", "scans:read")
		h := e.srv.TokenHandler()
		send := func(peer, xff string) int {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", xff)
			req.RemoteAddr = peer
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w.Code
		}
		// Through the proxy: each client has its own bucket.
		for i := range burst {
			if c := send("10.1.1.1:443", "198.51.100.1"); c != http.StatusOK {
				t.Fatalf("client 1 via proxy, request %d: %d", i+1, c)
			}
		}
		if c := send("10.1.1.1:443", "198.51.100.1"); c != http.StatusTooManyRequests {
			t.Errorf("client 1 via proxy past its burst: %d, want 429", c)
		}
		if c := send("10.1.1.1:443", "198.51.100.2"); c != http.StatusOK {
			t.Errorf("client 2 via the same proxy: %d, want 200 (its own bucket)", c)
		}
		// Not through the proxy: naming other addresses does not help.
		for i := range burst {
			if c := send("203.0.113.9:1000", "198.51.100."+strconv.Itoa(10+i)); c != http.StatusOK {
				t.Fatalf("direct client, request %d: %d", i+1, c)
			}
		}
		if c := send("203.0.113.9:1000", "198.51.100.99"); c != http.StatusTooManyRequests {
			t.Errorf("direct client naming a fresh address in X-Forwarded-For: %d, want 429 (the header is not believed)", c)
		}
	})
}
