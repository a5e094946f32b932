package client

import (
	"fmt"
	"time"
)

// Machine-readable codes of the Licensing API's refusals.
const (
	CodeInvalidCredentials   = "INVALID_CREDENTIALS" // #nosec G101 -- an error code, not a credential
	CodeInvalidToken         = "INVALID_TOKEN"
	CodeInvalidRequest       = "INVALID_REQUEST"
	CodeExpired              = "EXPIRED"
	CodeSuspended            = "SUSPENDED"
	CodeNoSeats              = "NO_SEATS"
	CodeNonceMismatch        = "NONCE_MISMATCH"
	CodeFingerprintMismatch  = "FINGERPRINT_MISMATCH"
	CodeLeaseExpired         = "LEASE_EXPIRED"
	CodeFeatureNotEntitled   = "FEATURE_NOT_ENTITLED"
	CodeFeatureLimitReached  = "FEATURE_LIMIT_REACHED"
	CodeFeatureNotCheckedOut = "FEATURE_NOT_CHECKED_OUT"
	CodeIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	CodeNotFound             = "NOT_FOUND"
	CodeRateLimited          = "RATE_LIMITED"
	CodeInternal             = "INTERNAL"
	CodeOfflineInvalid       = "OFFLINE_REQUEST_INVALID"
	CodeOfflineStale         = "OFFLINE_REQUEST_STALE"
	CodeOfflineReplayed      = "OFFLINE_REQUEST_REPLAYED"
)

// APIError is a refusal of the Licensing API: its HTTP status and its
// {"code", "message"} body. Code is empty when the answer was not the
// API's (a proxy's error page, say).
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration `json:"-"`
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("licensing api: %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("licensing api: %d %s: %s", e.Status, e.Code, e.Message)
}
