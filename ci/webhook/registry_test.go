package webhook_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-sec/vigil/ci/webhook"
	"golang.org/x/time/rate"
)

const registryToken = "registry-notify-token"

// images records the images it is given and enqueues each digest once.
type images struct {
	mu   sync.Mutex
	refs []string
	seen map[string]bool
}

func (e *images) EnqueueImage(_ context.Context, ref, digest string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refs = append(e.refs, ref)
	if e.seen == nil {
		e.seen = make(map[string]bool)
	}
	if e.seen[digest] {
		return false, nil
	}
	e.seen[digest] = true
	return true, nil
}

func (e *images) calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.refs...)
}

func setupRegistry(t *testing.T, cfg webhook.RegistryConfig) (*httptest.Server, *images) {
	t.Helper()
	enq := &images{}
	cfg.Enqueuer = enq
	cfg.Logger = testLogger(t)
	cfg.Rate = rate.Inf
	h, err := webhook.RegistryHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /hooks/registry", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, enq
}

func notify(t *testing.T, srv *httptest.Server, auth, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/hooks/registry", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	if bytes.Contains(raw, []byte(registryToken)) {
		t.Errorf("answer %s echoes the token", raw)
	}
	return resp.StatusCode, out
}

func TestRegistryHandler(t *testing.T) {
	t.Parallel()
	events := fixture(t, "registry-events.json")
	sum := sha256.Sum256([]byte(registryToken))
	byHash := webhook.RegistryConfig{TokenSHA256: hex.EncodeToString(sum[:])}
	byToken := webhook.RegistryConfig{Token: registryToken}
	wantRefs := []string{
		"registry.example.com/team/app@sha256:6d2e1e0a4c5b0c6c8d4b3f2a1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d",
		"registry.example.com:5000/team/multi@sha256:1111111111111111111111111111111111111111111111111111111111111111",
	}
	tests := []struct {
		name        string
		cfg         webhook.RegistryConfig
		auth        string
		contentType string
		body        []byte
		want        int
		wantBody    map[string]any
		wantRefs    []string
	}{
		{
			name: "manifest and index pushes; pulls and blobs ignored", cfg: byToken,
			auth: "Bearer " + registryToken, contentType: webhook.EnvelopeMediaType, body: events,
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 2.0}, wantRefs: wantRefs,
		},
		{
			name: "token configured by hash", cfg: byHash,
			auth: "bearer " + registryToken, contentType: "application/json; charset=utf-8", body: events,
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 2.0}, wantRefs: wantRefs,
		},
		{
			name: "only blobs and pulls", cfg: byToken, auth: "Bearer " + registryToken, contentType: webhook.EnvelopeMediaType,
			body: []byte(`{"events":[{"action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","repository":"a/b"},"request":{"host":"r.example.com"}},
				{"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","repository":"a/b"},"request":{"host":"r.example.com"}}]}`),
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 0.0},
		},
		{
			name: "bad digest skipped", cfg: byToken, auth: "Bearer " + registryToken, contentType: webhook.EnvelopeMediaType,
			body: []byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abc","repository":"a/b"},"request":{"host":"r.example.com"}}]}`),
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 0.0},
		},
		{
			name: "wrong token", cfg: byToken, auth: "Bearer guess", contentType: webhook.EnvelopeMediaType, body: events,
			want: http.StatusUnauthorized, wantBody: map[string]any{"code": "BAD_TOKEN"},
		},
		{
			name: "wrong token, hash configured", cfg: byHash, auth: "Bearer " + registryToken + "x", contentType: webhook.EnvelopeMediaType, body: events,
			want: http.StatusUnauthorized, wantBody: map[string]any{"code": "BAD_TOKEN"},
		},
		{
			name: "basic auth", cfg: byToken, auth: "Basic " + registryToken, contentType: webhook.EnvelopeMediaType, body: events,
			want: http.StatusUnauthorized, wantBody: map[string]any{"code": "BAD_TOKEN"},
		},
		{
			name: "no token", cfg: byToken, contentType: webhook.EnvelopeMediaType, body: events,
			want: http.StatusUnauthorized, wantBody: map[string]any{"code": "BAD_TOKEN"},
		},
		{
			name: "malformed envelope", cfg: byToken, auth: "Bearer " + registryToken, contentType: webhook.EnvelopeMediaType,
			body: []byte(`{"events":{}}`),
			want: http.StatusBadRequest, wantBody: map[string]any{"code": "BAD_PAYLOAD"},
		},
		{
			name: "not JSON", cfg: byToken, auth: "Bearer " + registryToken, contentType: "text/plain", body: events,
			want: http.StatusUnsupportedMediaType, wantBody: map[string]any{"code": "UNSUPPORTED_MEDIA_TYPE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, enq := setupRegistry(t, tt.cfg)
			got, answer := notify(t, srv, tt.auth, tt.contentType, tt.body)
			if got != tt.want {
				t.Fatalf("status = %d (%v), want %d", got, answer, tt.want)
			}
			for k, v := range tt.wantBody {
				if answer[k] != v {
					t.Errorf("answer[%q] = %v, want %v (answer %v)", k, answer[k], v, answer)
				}
			}
			if diff := cmp.Diff(enq.calls(), tt.wantRefs); diff != "" {
				t.Errorf("enqueued (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRegistryRedelivery(t *testing.T) {
	t.Parallel()
	srv, _ := setupRegistry(t, webhook.RegistryConfig{Token: registryToken})
	events := fixture(t, "registry-events.json")
	for i, want := range []float64{2, 0} {
		got, answer := notify(t, srv, "Bearer "+registryToken, webhook.EnvelopeMediaType, events)
		if got != http.StatusAccepted || answer["enqueued"] != want {
			t.Errorf("delivery %d: %d %v, want 202 enqueued %v", i, got, answer, want)
		}
	}
}

func TestRegistryConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  webhook.RegistryConfig
	}{
		{"no token", webhook.RegistryConfig{Enqueuer: &images{}}},
		{"both", webhook.RegistryConfig{Enqueuer: &images{}, Token: "a", TokenSHA256: hex.EncodeToString(make([]byte, 32))}},
		{"bad hash", webhook.RegistryConfig{Enqueuer: &images{}, TokenSHA256: "abc"}},
		{"no enqueuer", webhook.RegistryConfig{Token: "a"}},
	}
	for _, tt := range tests {
		if _, err := webhook.RegistryHandler(tt.cfg); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
