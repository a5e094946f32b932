// Package attest signs and verifies the attestation of an audit report
// bundle: an in-toto Statement v1 in a DSSE envelope, signed with an
// ECDSA P-256 key.
//
// The pieces, outermost first:
//
//   - Envelope (DSSE, https://github.com/secure-systems-lab/dsse): the
//     payload in standard base64, its payload type PayloadType, and
//     signatures, each with the signing key's ID ("keyid"). A signature is
//     ECDSA P-256 with SHA-256, ASN.1 DER, over the pre-authentication
//     encoding PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body)
//     SP body (lengths in ASCII decimal): what cosign writes and what
//     `openssl dgst -sha256 -verify` checks.
//   - Statement (in-toto v1, https://in-toto.io/Statement/v1): subjects
//     (file names with their SHA-256) and a typed predicate.
//   - AuditReport, the predicate of type PredicateType: the release, the
//     recipient, the ticket, every scan behind the report and the signing
//     key's ID. docs/audit-report-predicate.md describes it field by field.
//
// Keys are named by their RFC 7638 JWK thumbprint (keys.Thumbprint); the
// public keys travel as PEM (PKIX) or as a JWKS document, and
// ParsePublicKeys reads both. Signatures are deterministic (RFC 6979), so
// signing the same statement with the same key gives the same bytes.
//
// Sign makes an envelope; Verify checks it against a set of public keys,
// choosing each signature's key by its keyid, and returns the statement
// only when a signature is good. Package reports/bundle puts the envelope
// in a ZIP next to the files it names.
package attest
