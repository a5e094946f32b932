package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Signature headers.
const (
	HeaderGitHubSignature  = "X-Hub-Signature-256"
	HeaderGitLabToken      = "X-Gitlab-Token" // #nosec G101 -- a header name, not a credential
	HeaderGenericSignature = "X-Vigil-Signature"
)

// signaturePrefix starts the value of the HMAC signature headers.
const signaturePrefix = "sha256="

// ErrBadSignature is returned by the Verify functions, wrapped with a
// message saying what was wrong (never the secret or the signature).
var ErrBadSignature = errors.New("bad webhook signature")

// VerifyGitHub checks a GitHub X-Hub-Signature-256 header value:
// "sha256=" and the hex HMAC-SHA256 of the body keyed with the secret.
func VerifyGitHub(secret string, body []byte, signature string) error {
	return verifyHMAC(HeaderGitHubSignature, secret, body, signature)
}

// VerifyGeneric checks a Vigil X-Vigil-Signature header value, computed as
// GitHub's is: "sha256=" and the hex HMAC-SHA256 of the body keyed with the
// secret.
func VerifyGeneric(secret string, body []byte, signature string) error {
	return verifyHMAC(HeaderGenericSignature, secret, body, signature)
}

// VerifyGitLab checks a GitLab X-Gitlab-Token header value, which is the
// secret itself.
func VerifyGitLab(secret, token string) error {
	if secret == "" {
		return fmt.Errorf("%w: no webhook secret is configured for the project", ErrBadSignature)
	}
	if token == "" {
		return fmt.Errorf("%w: missing %s header", ErrBadSignature, HeaderGitLabToken)
	}
	// Compare digests so that neither the length nor the content of the
	// secret leaks through timing.
	want := sha256.Sum256([]byte(secret))
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fmt.Errorf("%w: %s does not match the project's webhook secret", ErrBadSignature, HeaderGitLabToken)
	}
	return nil
}

func verifyHMAC(header, secret string, body []byte, signature string) error {
	if secret == "" {
		// Anyone can compute an HMAC with an empty key.
		return fmt.Errorf("%w: no webhook secret is configured for the project", ErrBadSignature)
	}
	if signature == "" {
		return fmt.Errorf("%w: missing %s header", ErrBadSignature, header)
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: %s must start with %q", ErrBadSignature, header, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not a hex SHA-256 HMAC", ErrBadSignature, header)
	}
	if !hmac.Equal(got, Sign(secret, body)) {
		return fmt.Errorf("%w: %s does not match the body and the project's webhook secret", ErrBadSignature, header)
	}
	return nil
}

// Sign returns the HMAC-SHA256 of body keyed with secret. The header value
// is "sha256=" + hex.EncodeToString(Sign(secret, body)).
func Sign(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}
