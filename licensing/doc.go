// Package licensing is Vigil's licensing platform: tenants (the customers),
// products (whose IDs client applications embed), entitlements (seats,
// expiry, lease period, boolean and counted features) and their activation
// codes, and the operations of the online Licensing API.
//
// A Service holds the server's keys: an ES256 key that signs access tokens
// and a secret that keys the hashes of activation codes (stored only as
// HMAC-SHA256 of the normalised code, looked up by equality), nonces and
// idempotency keys, and the keys sealing stored answers, offline private
// keys and webhook keys (keys.go). The signing key lives in the database,
// sealed under the secret; the secret (Config.Secret) never does: the
// server derives it from its seal key, and New migrates an installation
// that kept one there.
//
// An application activates with a tenant, a product and an activation
// code (Activate), and gets a token and the first nonce of a chain. Every
// later call (Get, Refresh, Feature) presents the token and the last nonce
// and gets the next one; the check, the effect and the rotation of the
// nonce are one transaction (a compare-and-swap on the stored hash). A
// call made with an idempotency key stores its answer, sealed, so that a
// retry gets the same answer and nonce. Deactivate needs only the token.
//
// Seats are counted in the transaction that takes one, with the
// entitlement's row locked on PostgreSQL (SQLite has a single writer), so
// an entitlement never has more live seats than it allows. A seat whose
// lease ran out is free.
//
// The service keeps its state in a Store (store.go): the database methods
// it calls, with the types of the rows, which internal/store implements;
// the steps that must happen together run in one Tx. The Store's errors
// and the service's own match ErrNotFound, ErrConflict and ErrInvalid.
//
// Package licensing/api serves these operations over HTTP.
package licensing
