// Package webhook receives the deliveries that trigger scans: push
// webhooks from forges and push notifications from container registries.
//
// Handler serves POST /hooks/{provider}/{project}. It looks up the
// project's secret through a SecretLookup, verifies the delivery's
// signature before parsing anything (VerifyGitHub, VerifyGitLab,
// VerifyGeneric, all constant-time), reads the payload into a Push
// (ParseGitHub, ParseGitLab, ParseGeneric) and hands it to an Enqueuer,
// which queues each commit once however often the push is delivered. A bad
// or missing signature is 401 and nothing is enqueued.
//
//	provider  signature                                         payload
//	github    X-Hub-Signature-256: sha256=<hex HMAC-SHA256>    X-GitHub-Event: push (ping is answered, other events ignored)
//	gitlab    X-Gitlab-Token: <the secret>                      X-Gitlab-Event: Push Hook or Tag Push Hook
//	generic   X-Vigil-Signature: sha256=<hex HMAC-SHA256>      Vigil's payload, below
//
// The HMACs are of the raw body, keyed with the project's webhook secret.
// The generic payload is:
//
//	{
//	  "repo": "https://git.example.com/team/app.git",  // optional clone URL
//	  "ref": "refs/heads/main",                        // required; a bare name means a branch
//	  "before": "<sha>",                               // optional
//	  "after": "<sha>",                                // optional: the new head, scanned too
//	  "deleted": false,                                // optional: true when the ref was deleted
//	  "commits": [{"id": "<sha>"}, ...]                // oldest first
//	}
//
// SHAs are 40 (SHA-1) or 64 (SHA-256) hex digits; X-Vigil-Delivery may
// carry a delivery ID. A deleted branch or tag has nothing to scan: the
// answer is 200 with "ignored" and the Enqueuer is not called.
//
// RegistryHandler serves POST /hooks/registry: Docker distribution
// notification envelopes, authenticated with a bearer token. Each pushed
// manifest or index is handed to an ImageEnqueuer as host/repository@digest.
//
// Every handler bounds the body (MaxBodySize), limits requests per source
// address (429 when exceeded) and answers errors as {"code", "message"},
// never echoing a secret or a signature.
package webhook
