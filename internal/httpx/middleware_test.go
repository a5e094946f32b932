package httpx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func captureLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}

func TestRecoverHidesPanic(t *testing.T) {
	t.Parallel()
	logger, logs := captureLogger()
	h := RequestID(Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("pq: password authentication failed for user vigil")
	})))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/boom", nil)
	req.Header.Set(RequestIDHeader, "req-42")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body errorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 500 || body.Code != CodeInternal || strings.Contains(body.Message, "pq") {
		t.Errorf("response = %d %+v, want 500 INTERNAL without the panic", resp.StatusCode, body)
	}
	out := logs.String()
	for _, want := range []string{"password authentication failed", `"stack":`, "middleware_test.go", `"request_id":"req-42"`, `"level":"ERROR"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestAccessLogOmitsQueryAndHeaders(t *testing.T) {
	t.Parallel()
	logger, logs := captureLogger()
	h := RequestID(AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("short and stout"))
	})))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/s/report?token=sekrit-link-token", nil)
	req.Header.Set("Authorization", "Bearer sekrit-bearer")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get(RequestIDHeader)
	if id == "" {
		t.Error("no X-Request-Id in the response")
	}

	var line map[string]any
	if err := json.Unmarshal([]byte(logs.String()), &line); err != nil {
		t.Fatalf("access log is not one JSON line: %v\n%s", err, logs)
	}
	if strings.Contains(logs.String(), "sekrit") {
		t.Errorf("access log leaks the query string or a header:\n%s", logs)
	}
	want := map[string]any{"method": "GET", "path": "/s/report", "status": float64(418), "bytes": float64(15), "request_id": id}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Error("log has no duration")
	}
}

// A path whose segment after a secret prefix is a secret (a report
// link's token) is logged without it.
func TestAccessLogRedactsSecretPaths(t *testing.T) {
	t.Parallel()
	logger, logs := captureLogger()
	h := AccessLog(logger, "/r/")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, p := range []string{"/r/sekrit-token", "/r/sekrit-token/download", "/rx/public"} {
		resp, err := srv.Client().Post(srv.URL+p, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	out := logs.String()
	if strings.Contains(out, "sekrit") {
		t.Errorf("the access log holds the secret:\n%s", out)
	}
	for _, want := range []string{`"path":"/r/{redacted}"`, `"path":"/r/{redacted}/download"`, `"path":"/rx/public"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the access log lacks %s:\n%s", want, out)
		}
	}
	for in, want := range map[string]string{"/r/": "/r/", "/r/a/b/c": "/r/{redacted}/b/c", "/api/v1/x": "/api/v1/x", "/r": "/r"} {
		if got := RedactPath(in, "/r/"); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = RequestIDFrom(r.Context())
	}))
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"given", "abc-123", true},
		{"absent", "", false},
		{"control characters", "abc\x00\nforged log line", false},
		{"too long", strings.Repeat("a", maxRequestIDLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.in != "" {
				r.Header[RequestIDHeader] = []string{tt.in}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get(RequestIDHeader)
			if got == "" || got != seen {
				t.Errorf("response ID %q, context ID %q: want equal and set", got, seen)
			}
			if (got == tt.in) != tt.keep {
				t.Errorf("ID = %q for input %q, keep = %v", got, tt.in, tt.keep)
			}
		})
	}
}

func TestLimitBody(t *testing.T) {
	t.Parallel()
	h := LimitBody(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := DecodeJSON(w, r, &v, 1<<20); err != nil {
			WriteErr(w, err)
		}
	}))
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a":"0123456789"}`))
		r.Header.Set("Content-Type", "application/json")
		if chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), CodeBodyTooLarge) {
			t.Errorf("chunked=%v: %d %s, want 413", chunked, w.Code, w.Body)
		}
	}
}
