package gateclient_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci/gateclient"
)

// A token endpoint that says slow_down (429) is asked again after its
// Retry-After, within the client's timeout; beyond it, the refusal is
// the answer.
func TestAuthorizedClientSlowsDown(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		refusals   int32
		timeout    time.Duration
		wantOK     bool
	}{
		{"retried after Retry-After", "1", 2, 30 * time.Second, true},
		{"a wait beyond the timeout", "120", 1, 5 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				if asked.Add(1) <= tc.refusals {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Retry-After", tc.retryAfter)
					w.WriteHeader(http.StatusTooManyRequests)
					w.Write([]byte(`{"error":"slow_down","error_description":"too many requests; retry later"}`))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"access_token":"t0k","token_type":"Bearer","expires_in":300}`))
			})
			mux.HandleFunc("GET /api/v1/projects", func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer t0k" {
					w.WriteHeader(http.StatusUnauthorized)
				}
			})
			ts := httptest.NewServer(mux)
			defer ts.Close()
			base, hc, err := gateclient.AuthorizedClient(gateclient.Config{Server: ts.URL, ClientID: "id", ClientSecret: "secret", Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Get(base + "/api/v1/projects")
			if tc.wantOK {
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("after %d slow_down answers: %v %v", asked.Load()-1, resp, err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a Retry-After beyond the timeout was waited for: %d tries", asked.Load())
			}
			if asked.Load() != 1 {
				t.Errorf("asked %d times, want once", asked.Load())
			}
		})
	}
}
