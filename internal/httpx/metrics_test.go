package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsRoutePattern(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(RequestID(m.Middleware(mux)))
	t.Cleanup(srv.Close)

	for _, path := range []string{"/api/v1/scans/8f1c2a", "/api/v1/scans/77", "/no/such/path-secret"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := string(b)

	for _, want := range []string{
		`vigil_http_request_duration_seconds_count{method="GET",route="/api/v1/scans/{id}",status="2xx"} 2`,
		`vigil_http_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"} 1`,
		`vigil_http_request_duration_seconds_bucket{method="GET",route="/api/v1/scans/{id}",status="2xx",le="+Inf"} 2`,
		"go_goroutines",
		"process_",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{"8f1c2a", "path-secret"} {
		if strings.Contains(out, leak) {
			t.Errorf("/metrics has a raw path (%s)", leak)
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	var dbErr error
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", Health)
	mux.Handle("GET /readyz", Ready(func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("check has no deadline")
		}
		return dbErr
	}))

	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	tests := []struct {
		path       string
		dbErr      error
		wantStatus int
		wantBody   string
	}{
		{"/healthz", nil, 200, `{"status":"ok"}`},
		{"/readyz", nil, 200, `{"status":"ok"}`},
		{"/healthz", errors.New("database unreachable"), 200, `{"status":"ok"}`},
		{"/readyz", errors.New("database unreachable"), 503, `{"code":"NOT_READY","message":"database unreachable"}`},
	}
	for _, tt := range tests {
		dbErr = tt.dbErr
		if status, body := get(tt.path); status != tt.wantStatus || body != tt.wantBody {
			t.Errorf("%s with %v = %d %s, want %d %s", tt.path, tt.dbErr, status, body, tt.wantStatus, tt.wantBody)
		}
	}
}
