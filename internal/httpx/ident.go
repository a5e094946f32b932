package httpx

import (
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"
)

// CheckIdentifier is the one rule for every field that names or identifies
// something — a project, repository URL, branch, schedule, seat, tenant,
// product, waiver owner or path: valid UTF-8 of at most maxBytes bytes
// (no bound when maxBytes <= 0), without control characters (C0, DEL, C1:
// NUL, tab, newlines), line or paragraph separators, or invisible format
// characters (bidirectional overrides, zero-width characters), which would
// let one value print as another in logs, terminals and reports. Empty is
// allowed: the caller says whether the field is required. The error is a
// 400 INVALID_FIELD *Error that names the field and the character.
func CheckIdentifier(field, v string, maxBytes int) error {
	bad := func(format string, args ...any) error {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Message: field + ": " + fmt.Sprintf(format, args...)}
	}
	if maxBytes > 0 && len(v) > maxBytes {
		return bad("at most %d bytes", maxBytes)
	}
	for i, r := range v {
		switch {
		case r == utf8.RuneError && !validRuneAt(v, i):
			return bad("not valid UTF-8 (byte %d)", i)
		case unicode.IsControl(r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r), unicode.Is(unicode.Cf, r):
			return bad("must not contain control or invisible characters (%U at byte %d)", r, i)
		}
	}
	return nil
}

// validRuneAt reports whether the rune at byte i of s is a real U+FFFD
// rather than a decoding error.
func validRuneAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}
