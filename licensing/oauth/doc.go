// Package oauth is the OAuth2 authorization server of the Management API:
// the client_credentials grant (RFC 6749 §4.4) with client_secret_basic
// and client_secret_post, RFC 9068 JWT access tokens signed ES256,
// RFC 7662 introspection and RFC 7009 revocation.
//
//	srv, err := oauth.New(ctx, db, cfg)
//	id, secret, err := srv.CreateClient(ctx, "ci", []string{"scans:read"})
//	srv.Register(mux) // /oauth2/token, /oauth2/introspect, /oauth2/revoke, /.well-known/jwks.json
//	mux.Handle("GET /api/v1/scans", srv.Middleware("scans:read")(listScans))
//
// Client secrets are 32 random bytes, shown once and stored as
// HMAC-SHA256(pepper, client_id || 0 || secret). The secrets carry 256
// bits of entropy, so a slow password hash (argon2id, bcrypt) would add no
// resistance to guessing, while costing every token request tens of
// milliseconds of CPU on an unauthenticated endpoint. The pepper is
// Config.Pepper, which the server derives from its seal key: it is never
// in the database, so a copy of the database verifies no guessed secret.
// A pepper that an earlier version kept in the database is sealed and
// retired as pepper.go says.
//
// The ES256 signing key is made on the first start and kept in the
// database, sealed under a key derived from the pepper (seal.go); tokens carry its RFC 7638 thumbprint as "kid", and JWKSHandler
// publishes the public keys. Verify (and Middleware, for API handlers)
// checks the signature, the "typ" header, iss, aud, exp, the scope, and
// that neither the token nor its client has been revoked.
package oauth
