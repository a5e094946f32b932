package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
)

// Idempotency-Key on the Management API's writes: a client that retries
// a POST with the same key (after a timeout, a dropped connection) gets
// the first answer again instead of a second project, scan or tenant.
const (
	// IdempotencyKeyHeader is the request header that carries the key.
	IdempotencyKeyHeader = "Idempotency-Key"
	// IdempotentReplayedHeader is "true" on an answer replayed from a
	// stored key.
	IdempotentReplayedHeader = "Idempotent-Replayed"
	// MaxIdempotencyKey is the longest key accepted, in bytes.
	MaxIdempotencyKey = 255
	// IdempotencyTTL is how long an answer is kept for replays.
	IdempotencyTTL = 24 * time.Hour

	// idempotencyStale is how long a key may stay in progress before it
	// is deemed left by a dead process and may be claimed again. It
	// exceeds the longest a request may run (httpx.DefaultWriteTimeout).
	idempotencyStale = 5 * time.Minute
	// maxReplayBody bounds a stored answer; a larger one is not stored
	// (the key is released).
	maxReplayBody = 1 << 20
)

// Error codes of idempotency keys.
const (
	CodeIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	CodeIdempotencyKeyInUse  = "IDEMPOTENCY_KEY_IN_USE"
)

// idempotentPath reports whether a request is a write that takes an
// Idempotency-Key: creating projects, scans, waivers, releases, report
// bundles and report-signing keys, and every licensing, ticket, link and client POST.
func idempotentPath(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	switch p := r.URL.Path; p {
	case "/api/v1/projects", "/api/v1/scans", "/api/v1/waivers", "/api/v1/releases", "/api/v1/report-keys/rotate":
		return true
	default:
		if strings.HasPrefix(p, "/api/v1/releases/") && strings.HasSuffix(p, "/bundles") {
			return true
		}
		for _, prefix := range []string{"/api/v1/tenants", "/api/v1/products", "/api/v1/entitlements", "/api/v1/tickets", "/api/v1/links", "/api/v1/clients"} {
			if p == prefix || strings.HasPrefix(p, prefix+"/") {
				return true
			}
		}
	}
	return false
}

// validIdempotencyKey: 1 to MaxIdempotencyKey visible ASCII characters
// (no spaces or control characters), which any UUID or random token is.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotency is the middleware that stores and replays the answers of
// writes sent with an Idempotency-Key.
// Expired keys are deleted by the periodic sweep (sweeper in
// licensehooks.go), not on the request path.
type idempotency struct {
	s *Server
}

// idempotent wraps the API's mux. Requests without a key, or to paths
// that take none, pass through untouched; so do requests whose bearer
// token is missing or invalid (the API refuses them, and nothing is
// stored). Keys are per OAuth client: the same key from two clients is
// two keys.
func (s *Server) idempotent(next http.Handler) http.Handler {
	m := &idempotency{s: s}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyKeyHeader)
		if key == "" || !idempotentPath(r) {
			next.ServeHTTP(w, r)
			return
		}
		m.serve(w, r, key, next)
	})
}

func (m *idempotency) serve(w http.ResponseWriter, r *http.Request, key string, next http.Handler) {
	ctx := r.Context()
	if !validIdempotencyKey(key) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField,
			fmt.Sprintf("header %s: want 1 to %d visible ASCII characters (a UUID, say)", IdempotencyKeyHeader, MaxIdempotencyKey))
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		next.ServeHTTP(w, r)
		return
	}
	claims, err := m.s.oauth.Verify(ctx, strings.TrimSpace(token), "")
	if err != nil {
		next.ServeHTTP(w, r) // the API's own middleware answers
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit))
			return
		}
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidJSON, "the request body could not be read")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	hash := requestHash(r, body)

	rec, claimed, err := m.s.db.ClaimIdempotencyKey(ctx, claims.ClientID, key, hash, IdempotencyTTL, idempotencyStale)
	switch {
	case errors.Is(err, store.ErrConflict):
		inUse(w)
		return
	case err != nil:
		m.s.writeStoreError(w, r, err)
		return
	case !claimed && subtle.ConstantTimeCompare([]byte(rec.RequestHash), []byte(hash)) != 1:
		httpx.WriteError(w, http.StatusUnprocessableEntity, CodeIdempotencyKeyReused,
			fmt.Sprintf("this %s was used for a different request (another path or body) in the last %s; use a new key for a new request", IdempotencyKeyHeader, IdempotencyTTL))
		return
	case !claimed && rec.InProgress():
		inUse(w)
		return
	case !claimed:
		body, err := m.s.seal.Open(replayAAD(claims.ClientID, hash), string(rec.Body))
		if err != nil {
			m.s.log.ErrorContext(ctx, "stored idempotent answer does not open", slog.Any("error", err))
			httpx.WriteError(w, http.StatusInternalServerError, "INTERNAL", "the stored answer of this key cannot be read; retry with a new key")
			return
		}
		rec.Body = []byte(body)
		replay(w, rec)
		return
	}

	// This request claimed the key: run it, then store its answer, or
	// release the key so that a retry runs it again.
	bg := context.WithoutCancel(ctx)
	cw := &captureWriter{ResponseWriter: w}
	completed := false
	defer func() {
		if !completed {
			if err := m.s.db.ReleaseIdempotencyKey(bg, claims.ClientID, key, hash); err != nil {
				m.s.log.ErrorContext(bg, "idempotency key not released; it frees itself after a while", slog.Any("error", err))
			}
		}
	}()
	next.ServeHTTP(cw, r)
	if !storable(cw.statusCode()) || cw.overflow {
		return
	}
	// The answer is sealed at rest: it may hold what is shown once (an
	// entitlement's activation code, a webhook's signing secret).
	sealed := m.s.seal.Seal(replayAAD(claims.ClientID, hash), cw.body.String())
	err = m.s.db.CompleteIdempotencyKey(bg, claims.ClientID, key, hash, cw.statusCode(),
		cw.Header().Get("Content-Type"), cw.Header().Get("Location"), []byte(sealed))
	if err != nil {
		m.s.log.ErrorContext(bg, "answer not stored for its idempotency key; a retry will run the request again", slog.Any("error", err))
		return
	}
	completed = true
}

// replayAAD binds a sealed answer to its client and request, so that a
// stored answer cannot be moved to another key.
func replayAAD(clientID, requestHash string) string {
	return "idempotency\x00" + clientID + "\x00" + requestHash
}

// requestHash identifies a request: method, path, query and body.
func requestHash(r *http.Request, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", r.Method, r.URL.Path, r.URL.RawQuery)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// storable says which answers are replayed: successes and refusals of the
// request itself. Server errors, and refusals that a retry may turn
// around (authentication, scope, rate limit, timeout), free the key.
func storable(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status >= 200 && status < 500
}

func inUse(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	httpx.WriteError(w, http.StatusConflict, CodeIdempotencyKeyInUse,
		fmt.Sprintf("a request with this %s is still running; retry it once that one has finished", IdempotencyKeyHeader))
}

func replay(w http.ResponseWriter, rec store.Idempotency) {
	h := w.Header()
	if rec.ContentType != "" {
		h.Set("Content-Type", rec.ContentType)
	}
	if rec.Location != "" {
		h.Set("Location", rec.Location)
	}
	h.Set(IdempotentReplayedHeader, "true")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(rec.Status)
	w.Write(rec.Body)
}

// captureWriter keeps a copy of the answer, up to maxReplayBody.
type captureWriter struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	overflow bool
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 && status >= 200 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if !c.overflow {
		if c.body.Len()+len(p) > maxReplayBody {
			c.overflow = true
			c.body.Reset()
		} else {
			c.body.Write(p)
		}
	}
	return c.ResponseWriter.Write(p)
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *captureWriter) statusCode() int {
	if c.status == 0 {
		return http.StatusOK
	}
	return c.status
}
