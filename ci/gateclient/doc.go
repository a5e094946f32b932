// Package gateclient asks a Vigil server for the gate decision of a commit
// or an image, as CI pipelines and deploy scripts do with `vigil gate`.
//
// New builds a Client from a Config: the server's URL, the OAuth2 client
// credentials (client_credentials grant at <server>/oauth2/token, scope
// gate:read) and how to trust the server's certificate: the system roots,
// a CA certificate file (CACert) or the SHA-256 fingerprint `vigil serve`
// printed for its self-signed certificate (Fingerprint).
//
// Client.Gate asks once; Client.Wait asks again, with backoff, while the
// scan is pending (and, for a commit, while the server does not know it
// yet: the push webhook may not have arrived), until the decision is
// final or the wait runs out. Errors are *Error when the server answered,
// and name the server and what to do; they never include the secret.
package gateclient
