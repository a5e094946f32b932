// Package webhooks implements Standard Webhooks (standardwebhooks.com,
// spec 1.0.0) for the licensing platform's outgoing events: the
// webhook-id, webhook-timestamp and webhook-signature headers, signatures
// over "{msg_id}.{timestamp}.{payload}" as "v1," + base64 HMAC-SHA256 with
// a whsec_ secret and "v1a," + base64 Ed25519 with a whsk_/whpk_ key pair,
// verification with a five-minute tolerance and constant-time comparison,
// the event payload {"type", "timestamp", "data"}, and Send, one delivery
// attempt over HTTP with its outcome classified (2xx delivered, 410 Gone
// disables the endpoint, anything else is retried).
//
// A receiver needs only this package's Verify and the tenant's public key
// (whpk_…) to check a delivery:
//
//	pub, _ := webhooks.ParsePublicKey("whpk_…")
//	err := webhooks.Verify(r.Header, body, webhooks.Keys{Public: pub}, time.Now())
package webhooks
