package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// LimitParam reads the ?limit= of a list request: 0 when it is absent
// (the list's default), else 1 to max; anything else is a 400
// INVALID_FIELD *Error naming the value.
func LimitParam(r *http.Request, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Message: fmt.Sprintf("limit %q: want 1 to %d", v, max)}
	}
	return n, nil
}

// SafeMessage is the text of an error a domain built from one of its
// sentinels and the user's input ("project \"x\": not found", "invalid
// input: …"), which is safe to show. An error that went through a
// database (its text holds "store: ", "SQL" or "sql:"), or a long one,
// reads as the bare text of the first of sentinels it wraps, or "internal
// error".
func SafeMessage(err error, sentinels ...error) string {
	msg := err.Error()
	if len(msg) <= 300 && !strings.Contains(msg, "store: ") && !strings.Contains(msg, "SQL") && !strings.Contains(msg, "sql:") {
		return msg
	}
	for _, e := range sentinels {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "internal error"
}
