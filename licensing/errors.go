package licensing

import (
	"errors"
	"net/http"
)

// Sentinel errors of the model. The Service's errors wrap them for an
// unknown object (ErrNotFound), a write that contradicts what is stored
// (ErrConflict, a duplicate) and bad input (ErrInvalid); the errors of its
// Store satisfy errors.Is with them too. Their own messages are safe to
// show to users; the full text of an error that wraps one is for logs
// only, as it may hold SQL.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid input")
)

// Machine-readable codes of the Licensing API's errors.
const (
	CodeInvalidCredentials   = "INVALID_CREDENTIALS" // #nosec G101 -- an error code, not a credential
	CodeInvalidToken         = "INVALID_TOKEN"
	CodeInvalidRequest       = "INVALID_REQUEST"
	CodeInvalidField         = "INVALID_FIELD" // a field of the body is out of range; the message names it
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
)

// Error is a refusal of the licensing platform. Its Message is safe to
// show to the client.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status of the Licensing API for the error's code.
func (e *Error) Status() int {
	switch e.Code {
	case CodeInvalidCredentials, CodeInvalidToken, CodeLeaseExpired:
		return http.StatusUnauthorized
	case CodeExpired, CodeSuspended, CodeFingerprintMismatch, CodeFeatureNotEntitled:
		return http.StatusForbidden
	case CodeNoSeats, CodeNonceMismatch, CodeFeatureLimitReached, CodeFeatureNotCheckedOut:
		return http.StatusConflict
	case CodeIdempotencyKeyReused:
		return http.StatusUnprocessableEntity
	case CodeNotFound:
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func refuse(code, message string) *Error { return &Error{Code: code, Message: message} }

// errInvalidCredentials is the one answer to a wrong tenant, product or
// activation code, so that none of them can be told apart.
var errInvalidCredentials = refuse(CodeInvalidCredentials, "the tenant, product or activation code is not valid")

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) { return errors.AsType[*Error](err) }
