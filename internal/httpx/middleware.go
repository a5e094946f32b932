package httpx

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// RequestIDHeader carries the request ID in and out.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds a client-supplied request ID; longer ones, or ones
// with characters other than printable ASCII, are replaced.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestIDFrom returns the request ID that RequestID put in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestID takes the request's X-Request-Id (or makes a random one when it
// is absent or unfit for logs), puts it in the context for RequestIDFrom and
// echoes it in the response.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// Recover turns a panic in next into a 500 {"code": "INTERNAL"} response and
// logs the panic value with its stack; neither reaches the client. A panic
// with http.ErrAbortHandler is passed on, as net/http expects. The path is
// logged as RedactPath gives it for secretPrefixes.
func Recover(logger *slog.Logger, secretPrefixes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := wrap(w)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method,
					"path", RedactPath(r.URL.Path, secretPrefixes...),
					"request_id", RequestIDFrom(r.Context()),
					"panic", fmt.Sprint(v),
					"stack", string(debug.Stack()))
				if rec.wroteHeader {
					// Too late for an error response: cut the connection
					// so the client does not take a partial body as whole.
					panic(http.ErrAbortHandler)
				}
				WriteError(rec, http.StatusInternalServerError, CodeInternal, "internal error")
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// AccessLog logs one line per request at Info: method, path (never the
// query string, which may carry tokens), status, bytes written, duration
// and request ID. It logs no headers. Paths under secretPrefixes, whose
// next segment is a secret (a report link's token: "/r/"), are logged
// without it (RedactPath).
func AccessLog(logger *slog.Logger, secretPrefixes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := wrap(w)
			next.ServeHTTP(rec, r)
			logger.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("path", RedactPath(r.URL.Path, secretPrefixes...)),
				slog.Int("status", rec.statusCode()),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", RequestIDFrom(r.Context())),
			)
		})
	}
}

// Redacted replaces a secret in a logged path.
const Redacted = "{redacted}"

// RedactPath is path with the segment that follows any of the prefixes
// (each ending in "/") replaced by Redacted: "/r/TOKEN/download" is
// "/r/{redacted}/download" for the prefix "/r/".
func RedactPath(path string, prefixes ...string) string {
	for _, p := range prefixes {
		rest, ok := strings.CutPrefix(path, p)
		if !ok || rest == "" {
			continue
		}
		if _, tail, ok := strings.Cut(rest, "/"); ok {
			return p + Redacted + "/" + tail
		}
		return p + Redacted
	}
	return path
}

// LimitBody refuses bodies larger than n bytes: at once with 413 when the
// declared Content-Length is larger, and through http.MaxBytesReader when the
// body turns out larger while being read.
func LimitBody(n int64) func(http.Handler) http.Handler {
	return LimitBodyBy(func(*http.Request) int64 { return n })
}

// LimitBodyBy is LimitBody with a limit chosen per request, for a server
// whose routes need different limits: push webhooks and admission reviews
// are larger than API calls. limit must not return less than 1.
func LimitBodyBy(limit func(*http.Request) int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := limit(r)
			if r.ContentLength > n {
				e := tooLarge(n)
				WriteError(w, e.Status, e.Code, e.Message)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBodyByRoute limits bodies to the limit of the mux pattern a request
// matches (as mux.Handler finds it, so exactly the route that will serve
// it), and to def for every other pattern. A route with its own, larger
// limit (a push webhook) needs it here: a limit set inside the route's
// handler cannot raise the one around the mux.
func LimitBodyByRoute(mux *http.ServeMux, def int64, limits map[string]int64) func(http.Handler) http.Handler {
	return LimitBodyBy(func(r *http.Request) int64 {
		if _, pattern := mux.Handler(r); pattern != "" {
			if n, ok := limits[pattern]; ok {
				return n
			}
		}
		return def
	})
}

// recorder remembers the status and size of a response. Unwrap lets
// http.ResponseController reach the underlying writer.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func wrap(w http.ResponseWriter) *recorder {
	if rec, ok := w.(*recorder); ok {
		return rec
	}
	return &recorder{ResponseWriter: w}
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader && status >= 200 {
		r.status = status
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.status = http.StatusOK
		r.wroteHeader = true
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.status = http.StatusOK
		r.wroteHeader = true
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// statusCode is the status sent, or 200 if the handler wrote nothing.
func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
