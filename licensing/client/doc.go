// Package client is the Go client of the online Licensing API, for the
// applications Vigil licenses.
//
// A Client activates a seat with an activation code, then keeps the nonce
// chain going: every later call (Get, Refresh, Checkout, Return, Track)
// sends the access token, the tenant and the last N-Nonce, and saves the
// N-Nonce of the answer in its Store before it returns, so a crash or a
// restart of the application does not lose its place in the chain.
//
// Each call of the chain carries a fresh Idempotency-Key. A transient
// failure (a network error, a 5xx answer, 429 with Retry-After) is retried
// with the same key, nonce and body, so when the first answer was lost on
// the way back the server replays it instead of refusing a stale nonce.
// Refusals are *APIError values with the API's machine-readable code:
//
//	var e *client.APIError
//	if errors.As(err, &e) && e.Code == client.CodeNonceMismatch { ... }
//
// A client that lost its nonce anyway (its state file restored from an old
// backup, say) can still Deactivate, which needs only the token, and then
// Activate again.
//
// FileStore keeps the state in a file written atomically with mode 0600;
// MemoryStore keeps it in memory.
//
// Offline activation (air-gapped machines: a request sealed with HPKE to
// the tenant's server key, a signed license file in return) goes through
// OfflineRequest, SubmitOffline (on a machine that reaches the server) and
// OpenOffline; the formats and the cryptography are package
// licensing/offline.
package client
