package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vigil-sec/vigil/internal/httpx"
)

// tokenType is the JWT "typ" header of access tokens (RFC 9068 §2.1).
const tokenType = "at+jwt"

// maxBodyBytes bounds the form bodies of the token, introspection and
// revocation endpoints.
const maxBodyBytes = 64 << 10

// Errors of Verify. Their messages, and those of errors wrapping them, are
// safe to show to the caller.
var (
	ErrInvalidToken      = errors.New("invalid token")
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrClientRevoked is a token whose client was revoked (or no longer
	// exists): a new token will not help, only new credentials. It is an
	// ErrInvalidToken too.
	ErrClientRevoked = fmt.Errorf("%w: its client was revoked", ErrInvalidToken)
)

// Claims are the verified claims of an access token.
type Claims struct {
	Issuer   string
	Subject  string // the client ID
	Audience []string
	ClientID string
	Scopes   []string
	// TenantID is the tenant the client is bound to ("vigil_tenant"),
	// "" for a client bound to none.
	TenantID string
	IssuedAt time.Time
	Expiry   time.Time
	ID       string // "jti"
}

// HasScope reports whether the token grants the scope.
func (c *Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// wireClaims is the JWT payload (RFC 9068 §2.2).
type wireClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	// Tenant is the licensing tenant a client bound to one acts for
	// (TenantClaim).
	Tenant string `json:"vigil_tenant,omitempty"`
}

// TenantClaim is the private claim of the access tokens of a client bound
// to a tenant: the tenant's ID.
const TenantClaim = "vigil_tenant"

// tokenResponse is the successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// oauthError is an error response of RFC 6749 §5.2.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func invalidRequest(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

var errInvalidClient = &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}

// grants reports whether a client holding scopes may get a token with
// scope sc: one of its own, or, for an AdminScope client (which the API
// lets do everything), any scope of Config.Scopes (any well-formed scope
// when that is nil), so that it can ask for a narrower token.
func (s *Server) grants(scopes []string, sc string) bool {
	if slices.Contains(scopes, sc) {
		return true
	}
	if !slices.Contains(scopes, AdminScope) || !validScopeToken(sc) {
		return false
	}
	return s.cfg.Scopes == nil || slices.Contains(s.cfg.Scopes, sc)
}

// TokenHandler serves the token endpoint (RFC 6749 §3.2) for the
// client_credentials grant.
func (s *Server) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !s.parseForm(w, r, "grant_type", "scope") {
			return
		}
		client, ok := s.authenticateRequest(w, r)
		if !ok {
			return
		}
		switch gt := r.PostForm.Get("grant_type"); gt {
		case "client_credentials":
		case "":
			writeOAuthError(w, invalidRequest("grant_type is missing"))
			return
		default:
			writeOAuthError(w, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported"})
			return
		}
		scopes := client.Scopes
		if req := strings.Fields(r.PostForm.Get("scope")); len(req) > 0 {
			for _, sc := range req {
				if !s.grants(client.Scopes, sc) {
					s.log.WarnContext(ctx, "oauth token refused: scope not granted to the client", slog.String("client_id", client.ID))
					writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_scope", "the requested scope exceeds the scope granted to the client"})
					return
				}
			}
			slices.Sort(req)
			scopes = slices.Compact(req)
		}
		tok, claims, err := s.issue(client, scopes)
		if err != nil {
			s.log.ErrorContext(ctx, "oauth: sign access token", slog.Any("error", err))
			writeOAuthError(w, &oauthError{http.StatusInternalServerError, "server_error", "the token could not be issued"})
			return
		}
		s.log.InfoContext(ctx, "oauth token issued", slog.String("client_id", client.ID), slog.String("jti", claims.ID), slog.String("scope", claims.Scope))
		writeJSON(w, http.StatusOK, tokenResponse{
			AccessToken: tok,
			TokenType:   "Bearer",
			ExpiresIn:   int64(s.cfg.TokenTTL / time.Second),
			Scope:       claims.Scope,
		})
	})
}

// issue signs an access token for the client, with the scopes.
func (s *Server) issue(client StoredClient, scopes []string) (string, wireClaims, error) {
	clientID := client.ID
	jti := make([]byte, 16)
	rand.Read(jti)
	now := s.now()
	c := wireClaims{
		Claims: jwt.Claims{
			Issuer:   s.cfg.Issuer,
			Subject:  clientID,
			Audience: jwt.Audience{s.cfg.Audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(s.cfg.TokenTTL)),
			ID:       base64.RawURLEncoding.EncodeToString(jti),
		},
		ClientID: clientID,
		Scope:    strings.Join(scopes, " "),
		Tenant:   client.TenantID,
	}
	s.mu.Lock()
	signer := s.signer
	s.mu.Unlock()
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	return tok, c, err
}

// parseForm checks the method, the content type and the rate limit, and
// parses the bounded form body. The named parameters, and the client
// credentials, may appear at most once. It answers the error itself.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request, params ...string) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "use POST"})
		return false
	}
	if ok, wait := s.limiter.Allow(httpx.ClientIP(r, s.cfg.TrustedProxies...)); !ok {
		httpx.SetRetryAfter(w, wait)
		writeOAuthError(w, &oauthError{http.StatusTooManyRequests, "slow_down", "too many requests; retry later"})
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, invalidRequest("the body must be application/x-www-form-urlencoded"))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("the form body is malformed or larger than 64 KiB"))
		return false
	}
	if q := r.URL.Query(); q.Has("client_secret") || q.Has("token") {
		writeOAuthError(w, invalidRequest("credentials and tokens must not be sent in the URL"))
		return false
	}
	for _, p := range append(params, "client_id", "client_secret") {
		if len(r.PostForm[p]) > 1 {
			writeOAuthError(w, invalidRequest("parameter "+p+" is repeated"))
			return false
		}
	}
	return true
}

// authenticateRequest authenticates the client by HTTP Basic
// (client_secret_basic) or by the form (client_secret_post). It answers
// the error itself.
func (s *Server) authenticateRequest(w http.ResponseWriter, r *http.Request) (StoredClient, bool) {
	ctx := r.Context()
	var id, secret string
	if r.Header.Get("Authorization") != "" {
		u, p, ok := r.BasicAuth()
		if !ok {
			writeOAuthError(w, errInvalidClient)
			return StoredClient{}, false
		}
		// RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(u)
		secret, err2 = url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			writeOAuthError(w, errInvalidClient)
			return StoredClient{}, false
		}
		if r.PostForm.Has("client_secret") || (r.PostForm.Has("client_id") && r.PostForm.Get("client_id") != id) {
			writeOAuthError(w, invalidRequest("use one client authentication method"))
			return StoredClient{}, false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" || secret == "" {
		writeOAuthError(w, errInvalidClient)
		return StoredClient{}, false
	}
	c, fail, err := s.authenticate(ctx, id, secret)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth: authenticate client", slog.Any("error", err))
		writeOAuthError(w, &oauthError{http.StatusInternalServerError, "server_error", "try again later"})
		return StoredClient{}, false
	}
	if fail != 0 {
		attrs := []any{slog.String("reason", fail.String()), slog.String("remote", httpx.ClientIP(r, s.cfg.TrustedProxies...))}
		if fail != failUnknownClient { // an unknown ID may be a misplaced secret: do not log it
			attrs = append(attrs, slog.String("client_id", id))
		}
		s.log.WarnContext(ctx, "oauth client authentication failed", attrs...)
		writeOAuthError(w, errInvalidClient)
		return StoredClient{}, false
	}
	return c, true
}

// Verify checks an access token and that it grants requiredScope (none if
// empty): the ES256 signature by one of the server's keys, the "at+jwt"
// type, iss, aud, exp and iat with the configured leeway, and that neither
// the token nor its client has been revoked. Errors wrap ErrInvalidToken or
// ErrInsufficientScope, or are internal (the database failed).
func (s *Server) Verify(ctx context.Context, token, requiredScope string) (*Claims, error) {
	c, err := s.verify(ctx, token, true)
	if err != nil {
		return nil, err
	}
	if requiredScope != "" && !c.HasScope(requiredScope) {
		return c, fmt.Errorf("%w: the token does not grant %q", ErrInsufficientScope, requiredScope)
	}
	return c, nil
}

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, reason) }

// verify checks the token; checkExpiry false skips exp (for revocation).
func (s *Server) verify(ctx context.Context, token string, checkExpiry bool) (*Claims, error) {
	if checkExpiry {
		if e, ok := s.verified.Get(token); ok {
			c := e.claims
			now := s.now()
			if now.After(c.Expiry.Add(s.cfg.Leeway)) {
				return nil, invalid("expired")
			}
			if now.Sub(e.checkedAt) < s.cfg.RevocationRecheck {
				return &c, nil
			}
			if err := s.checkRevoked(ctx, &c); err != nil {
				return nil, err
			}
			s.verified.Put(token, verifiedEntry{claims: c, checkedAt: now})
			return &c, nil
		}
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, invalid("malformed or not signed ES256")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, tokenType) && !strings.EqualFold(typ, "application/"+tokenType) {
		return nil, invalid("not an access token (typ)")
	}
	key, err := s.publicKey(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, invalid("unknown signing key")
	}
	var wc wireClaims
	if err := tok.Claims(key, &wc); err != nil {
		return nil, invalid("bad signature")
	}
	if wc.Expiry == nil || wc.IssuedAt == nil || wc.ID == "" || wc.ClientID == "" || wc.Subject != wc.ClientID {
		return nil, invalid("missing claims")
	}
	now := s.now()
	if !checkExpiry {
		now = wc.IssuedAt.Time()
	}
	err = wc.Claims.ValidateWithLeeway(jwt.Expected{Issuer: s.cfg.Issuer, AnyAudience: jwt.Audience{s.cfg.Audience}, Time: now}, s.cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, invalid("expired")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalid("wrong audience")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, invalid("wrong issuer")
	case err != nil:
		return nil, invalid("not valid yet")
	}
	c := &Claims{
		Issuer: wc.Issuer, Subject: wc.Subject, Audience: wc.Audience, ClientID: wc.ClientID,
		Scopes: strings.Fields(wc.Scope), TenantID: wc.Tenant, IssuedAt: wc.IssuedAt.Time(), Expiry: wc.Expiry.Time(), ID: wc.ID,
	}
	if checkExpiry {
		if err := s.checkRevoked(ctx, c); err != nil {
			return nil, err
		}
		s.verified.Put(token, verifiedEntry{claims: *c, checkedAt: now})
	}
	return c, nil
}

// checkRevoked refuses a token that was revoked, or whose client was.
func (s *Server) checkRevoked(ctx context.Context, c *Claims) error {
	revoked, err := s.db.OAuthTokenRevoked(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("oauth: verify token: %w", err)
	}
	if revoked {
		return invalid("revoked")
	}
	client, err := s.db.GetOAuthClient(ctx, c.ClientID)
	if errors.Is(err, ErrNotFound) || (err == nil && client.Revoked()) {
		return ErrClientRevoked
	}
	if err != nil {
		return fmt.Errorf("oauth: verify token: %w", err)
	}
	return nil
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="vigil", charset="UTF-8"`)
	}
	writeJSON(w, e.status, e)
}

// writeJSON answers v with the no-store headers that every response of
// the endpoints here carries (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
