package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Register mounts the endpoints on mux: the token endpoint at
// /oauth2/token, introspection at /oauth2/introspect, revocation at
// /oauth2/revoke and the key set at /.well-known/jwks.json.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("/oauth2/token", s.TokenHandler())
	mux.Handle("/oauth2/introspect", s.IntrospectionHandler())
	mux.Handle("/oauth2/revoke", s.RevocationHandler())
	mux.Handle("GET /.well-known/jwks.json", s.JWKSHandler())
}

// JWKSHandler serves the public signing keys as a JWK Set (RFC 7517).
func (s *Server) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.keys))}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
		s.mu.Unlock()
		slices.SortFunc(set.Keys, func(a, b jose.JSONWebKey) int { return strings.Compare(a.KeyID, b.KeyID) })
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		json.NewEncoder(w).Encode(set)
	})
}

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	Tenant    string   `json:"vigil_tenant,omitempty"`
}

// IntrospectionHandler serves RFC 7662 token introspection. The caller
// authenticates as a client, as at the token endpoint; a token is
// reported active only to its own client or to a client with AdminScope,
// and anything else is {"active": false}.
func (s *Server) IntrospectionHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !s.parseForm(w, r, "token", "token_type_hint") {
			return
		}
		caller, ok := s.authenticateRequest(w, r)
		if !ok {
			return
		}
		token := r.PostForm.Get("token")
		if token == "" {
			writeOAuthError(w, invalidRequest("token is missing"))
			return
		}
		c, err := s.verify(ctx, token, true)
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			s.log.ErrorContext(ctx, "oauth: introspect", slog.Any("error", err))
			writeOAuthError(w, &oauthError{http.StatusInternalServerError, "server_error", "try again later"})
			return
		}
		if err != nil || !mayManage(caller, c) {
			writeJSON(w, http.StatusOK, introspection{Active: false})
			return
		}
		writeJSON(w, http.StatusOK, introspection{
			Active: true, Scope: strings.Join(c.Scopes, " "), ClientID: c.ClientID, TokenType: "Bearer",
			Exp: c.Expiry.Unix(), Iat: c.IssuedAt.Unix(), Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer, Jti: c.ID, Tenant: c.TenantID,
		})
	})
}

// RevocationHandler serves RFC 7009 token revocation. The caller
// authenticates as a client; it may revoke its own tokens, and a client
// with AdminScope any token. The answer is 200 whether or not there was
// anything to revoke.
func (s *Server) RevocationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !s.parseForm(w, r, "token", "token_type_hint") {
			return
		}
		caller, ok := s.authenticateRequest(w, r)
		if !ok {
			return
		}
		token := r.PostForm.Get("token")
		if token == "" {
			writeOAuthError(w, invalidRequest("token is missing"))
			return
		}
		// Expired tokens need no revocation; verify ignores exp here so that
		// a token within its leeway is still revoked.
		c, err := s.verify(ctx, token, false)
		switch {
		case errors.Is(err, ErrInvalidToken):
		case err != nil:
			s.log.ErrorContext(ctx, "oauth: revoke", slog.Any("error", err))
			writeOAuthError(w, &oauthError{http.StatusServiceUnavailable, "server_error", "try again later"})
			return
		case !mayManage(caller, c):
			s.log.WarnContext(ctx, "oauth: a client tried to revoke another client's token", slog.String("client_id", caller.ID))
		case c.Expiry.Add(s.cfg.Leeway).Before(s.now()):
		default:
			err := s.db.RevokeOAuthToken(ctx, RevokedToken{JTI: c.ID, ClientID: c.ClientID, ExpiresAt: c.Expiry.Add(s.cfg.Leeway)})
			if err != nil {
				s.log.ErrorContext(ctx, "oauth: revoke", slog.Any("error", err))
				writeOAuthError(w, &oauthError{http.StatusServiceUnavailable, "server_error", "try again later"})
				return
			}
			s.verified.Clear()
			s.log.InfoContext(ctx, "oauth token revoked", slog.String("client_id", c.ClientID), slog.String("jti", c.ID), slog.String("by", caller.ID))
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		w.WriteHeader(http.StatusOK)
	})
}

func mayManage(caller StoredClient, c *Claims) bool {
	return caller.ID == c.ClientID || slices.Contains(caller.Scopes, AdminScope)
}

type claimsKey struct{}

// ClaimsFromContext returns the claims Middleware put in the request's
// context.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// apiError is the API's error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Middleware lets through requests whose bearer token (RFC 6750) Verify
// accepts with the scope (none if empty), with the claims in the context
// (ClaimsFromContext). Others get 401 (no token, or an invalid one) or 403
// (insufficient_scope) with a WWW-Authenticate challenge.
func (s *Server) Middleware(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
				writeAPIError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "send an access token from /oauth2/token in the Authorization: Bearer header")
				return
			}
			c, err := s.Verify(ctx, strings.TrimSpace(token), scope)
			switch {
			case errors.Is(err, ErrInsufficientScope):
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="vigil", error="insufficient_scope", scope=%q`, scope))
				writeAPIError(w, http.StatusForbidden, "INSUFFICIENT_SCOPE", fmt.Sprintf("this call needs a token with scope %q", scope))
				return
			case errors.Is(err, ErrClientRevoked):
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil", error="invalid_token"`)
				writeAPIError(w, http.StatusUnauthorized, "CLIENT_REVOKED",
					"the client this token was issued to has been revoked: a new token will not be issued to it; ask an administrator for new client credentials")
				return
			case errors.Is(err, ErrInvalidToken):
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil", error="invalid_token"`)
				writeAPIError(w, http.StatusUnauthorized, "INVALID_TOKEN", err.Error()+"; get a new token from /oauth2/token")
				return
			case err != nil:
				s.log.ErrorContext(ctx, "oauth: verify token", slog.Any("error", err))
				writeAPIError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the token could not be checked; try again")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, claimsKey{}, c)))
		})
	}
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(apiError{Code: code, Message: msg})
}
