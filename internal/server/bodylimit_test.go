package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/ci/admission"
	"github.com/vigil-sec/vigil/ci/webhook"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// rawPost posts body to the mounted server, chunked (no Content-Length)
// when chunked is set, and returns the status and the answer.
func (e *env) rawPost(path, contentType string, body []byte, chunked bool, header http.Header) (int, string) {
	e.t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length from net/http
	}
	req, err := http.NewRequest("POST", e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBodyLimitsPerRoute: the server-wide limit of API bodies must not cut
// push webhooks (up to webhook.MaxBodySize) or admission reviews (up to
// admission.MaxReviewSize) short, and must still hold for everything else.
func TestBodyLimitsPerRoute(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		r, clean, _ := repo(t)
		e.createProject("big", "file://"+r.Dir)

		// A push of 3 MiB (a long commit message, as GitHub sends them).
		push := func(size int) []byte {
			head := fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"clone_url":"file://%s"},"commits":[{"id":"%s","message":"`,
				strings.Repeat("0", 40), clean, r.Dir, clean)
			tail := `"}]}`
			return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
		}
		signed := func(body []byte) http.Header {
			return http.Header{
				"X-Github-Event":      {"push"},
				"X-Github-Delivery":   {fmt.Sprintf("d-%d", len(body))},
				"X-Hub-Signature-256": {"sha256=" + fmt.Sprintf("%x", webhook.Sign(webhookSecret, body))},
			}
		}
		for _, chunked := range []bool{false, true} {
			body := push(3 << 20)
			if code, b := e.rawPost("/hooks/github/big", "application/json", body, chunked, signed(body)); code != http.StatusAccepted {
				t.Errorf("3 MiB push (chunked %v): %d %s, want 202", chunked, code, b)
			}
		}
		// The webhook's own limit still holds.
		body := push(webhook.MaxBodySize + 1)
		if code, b := e.rawPost("/hooks/github/big", "application/json", body, false, signed(body)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("push over webhook.MaxBodySize: %d %s, want 413", code, b[:min(len(b), 200)])
		}
		if code, b := e.rawPost("/hooks/github/big", "application/json", body, true, signed(body)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked push over webhook.MaxBodySize: %d %s, want 413", code, b[:min(len(b), 200)])
		}

		// An AdmissionReview of 3 MiB (a pod with large annotations) is
		// answered, not refused.
		review := func(size int) []byte {
			head := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-big",
				"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod",
				"metadata":{"name":"p","annotations":{"a":"`
			tail := `"}},"spec":{"containers":[{"name":"c","image":"registry.invalid/never-scanned:v1"}]}}}}`
			return []byte(head + strings.Repeat("y", size-len(head)-len(tail)) + tail)
		}
		for _, chunked := range []bool{false, true} {
			code, b := e.rawPost("/admission/v1/validate", "application/json", review(3<<20), chunked, nil)
			var out struct{ Response struct{ UID string } }
			if code != http.StatusOK || json.Unmarshal([]byte(b), &out) != nil || out.Response.UID != "u-big" {
				t.Errorf("3 MiB review (chunked %v): %d %.200s, want 200 with the review's uid", chunked, code, b)
			}
		}
		if code, b := e.rawPost("/admission/v1/validate", "application/json", review(admission.MaxReviewSize+1), true, nil); code != http.StatusRequestEntityTooLarge {
			t.Errorf("review over admission.MaxReviewSize: %d %.200s, want 413", code, b)
		}

		// Everything else keeps the API's limit, also on paths that start
		// like the larger routes.
		big := bytes.Repeat([]byte(" "), httpx.DefaultBodyLimit+1)
		for _, path := range []string{"/api/v1/projects", "/oauth2/token", "/admission/v1/validatex", "/hooksx/github/big"} {
			if code, b := e.rawPost(path, "application/json", big, false, nil); code != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s of %d bytes: %d %.200s, want 413", path, len(big), code, b)
			}
		}
		req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/projects", io.MultiReader(bytes.NewReader(big)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked POST /api/v1/projects of %d bytes: %d, want 413", len(big), resp.StatusCode)
		}
	})
}

// TestPushHookHidesProjects: through the mounted server, a push to a
// project that does not exist is answered exactly as one with a wrong
// signature to a project that does.
func TestPushHookHidesProjects(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		r, _, _ := repo(t)
		e.createProject("app", "file://"+r.Dir)
		body := []byte(`{"ref":"refs/heads/main","after":"` + strings.Repeat("a", 40) + `"}`)
		for _, h := range []http.Header{
			{"X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=" + fmt.Sprintf("%x", webhook.Sign("guess", body))}},
			{"X-Github-Event": {"push"}},
		} {
			code, known := e.rawPost("/hooks/github/app", "application/json", body, false, h)
			code2, unknown := e.rawPost("/hooks/github/nope", "application/json", body, false, h)
			if code != http.StatusUnauthorized || code2 != code || unknown != known {
				t.Errorf("existing project: %d %s; unknown project: %d %s; want the same 401", code, known, code2, unknown)
			}
		}
	})
}
