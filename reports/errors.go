package reports

import "errors"

// Sentinel errors of the reports domain. The services' errors wrap them
// for an unknown object (ErrNotFound), a change the stored state does not
// allow (ErrConflict), bad input (ErrInvalid) and a caller that may not
// do what it asks (ErrForbidden); the errors of their stores satisfy
// errors.Is with the first three too. Their own messages are safe to show
// to users; the full text of an error that wraps one is for logs only, as
// it may hold SQL.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrInvalid   = errors.New("invalid input")
	ErrForbidden = errors.New("forbidden")
)
