package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/vigil-sec/vigil/internal/strictjson"
)

// DefaultBodyLimit is the request body limit of DecodeJSON when the caller
// gives none.
const DefaultBodyLimit = 1 << 20

// Error codes written by this package. Domain packages add their own.
const (
	CodeInvalidJSON          = "INVALID_JSON"
	CodeUnknownField         = "UNKNOWN_FIELD"
	CodeDuplicateKey         = "DUPLICATE_KEY"
	CodeInvalidField         = "INVALID_FIELD"
	CodeBodyTooLarge         = "BODY_TOO_LARGE"
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	CodeRateLimited          = "RATE_LIMITED"
	CodeNotReady             = "NOT_READY"
	CodeInternal             = "INTERNAL"
)

// Error is an HTTP error whose Message is safe to show to the client.
// Write it with WriteError(w, e.Status, e.Code, e.Message) or WriteErr.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// errorBody is the JSON of every error response (DESIGN "API conventions").
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes v as the JSON response body with status. If v cannot be
// encoded, the client gets a 500 INTERNAL error instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Code: CodeInternal, Message: "internal error"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// WriteError writes {"code": code, "message": message} with status. message
// is shown to the client: never put a stack trace, SQL or a secret in it.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, errorBody{Code: code, Message: message})
}

// WriteErr writes err if it is (or wraps) an *Error, and a bare 500
// INTERNAL error otherwise, so that an unexpected error's text never reaches
// the client. The caller logs err.
func WriteErr(w http.ResponseWriter, err error) {
	if e, ok := errors.AsType[*Error](err); ok {
		WriteError(w, e.Status, e.Code, e.Message)
		return
	}
	WriteError(w, http.StatusInternalServerError, CodeInternal, "internal error")
}

// DecodeJSON decodes the request body, which must be one JSON value of media
// type application/json (or a +json type), into dst. The body is limited to
// limit bytes (DefaultBodyLimit if limit <= 0); unknown fields and data after
// the value are refused, as are duplicate keys and keys that match a field
// only when case is ignored (see strictjson). Errors are *Error with status
// 400, 413 or 415 and a message naming the problem.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return decodeError(err, limit)
	}
	// Duplicate keys, and keys that match a field only ignoring case, are
	// refused before encoding/json, which would take them.
	if err := strictjson.Check(body, dst, true); err != nil {
		if e, ok := errors.AsType[*strictjson.KeyError](err); ok {
			code := CodeUnknownField
			if errors.Is(e, strictjson.ErrDuplicateKey) {
				code = CodeDuplicateKey
			}
			return &Error{Status: http.StatusBadRequest, Code: code, Message: e.Error()}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	// Anything but whitespace after the value is refused.
	off := dec.InputOffset()
	rest := body[off:]
	if trimmed := bytes.TrimLeft(rest, " \t\r\n"); len(trimmed) > 0 {
		return &Error{
			Status:  http.StatusBadRequest,
			Code:    CodeInvalidJSON,
			Message: fmt.Sprintf("unexpected data after the JSON value at offset %d", off+int64(len(rest)-len(trimmed))),
		}
	}
	return nil
}

func checkJSONContentType(ct string) error {
	if ct == "" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Message: "missing Content-Type: send application/json"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Message: fmt.Sprintf("Content-Type %q is not supported: send application/json", ct)}
	}
	return nil
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
		Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

func decodeError(err error, limit int64) *Error {
	bad := func(code, format string, args ...any) *Error {
		return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge(limit)
	}
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return bad(CodeInvalidJSON, "malformed JSON at offset %d: %s", e.Offset, strings.TrimPrefix(e.Error(), "json: "))
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if e.Field == "" {
			return bad(CodeInvalidJSON, "the body must be %s, not %s", jsonKind(e.Type.Kind().String()), e.Value)
		}
		return bad(CodeInvalidField, "field %q must be %s, not %s (offset %d)", e.Field, jsonKind(e.Type.Kind().String()), e.Value, e.Offset)
	}
	switch {
	case errors.Is(err, io.EOF):
		return bad(CodeInvalidJSON, "the request body is empty: send a JSON value")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad(CodeInvalidJSON, "malformed JSON: the body ends in the middle of a value")
	}
	// encoding/json has no typed error for unknown fields.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return bad(CodeUnknownField, "unknown field %s", name)
	}
	return bad(CodeInvalidJSON, "invalid JSON body")
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return "a " + kind
}
