package webhook_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-sec/vigil/ci/webhook"
	"golang.org/x/time/rate"
)

const (
	project = "app"
	secret  = "s3cr3t-webhook-key"
)

// secrets is a SecretLookup over a map.
type secrets map[string]string

func (s secrets) WebhookSecret(_ context.Context, project string) (string, error) {
	if project == "broken" {
		return "", errors.New("database is down")
	}
	v, ok := s[project]
	if !ok {
		return "", fmt.Errorf("project %q: %w", project, webhook.ErrUnknownProject)
	}
	return v, nil
}

// enqueuer records the pushes it is given and enqueues each commit once.
type enqueuer struct {
	mu     sync.Mutex
	pushes []webhook.Push
	seen   map[string]bool
	err    error
}

func (e *enqueuer) EnqueueCommits(_ context.Context, project string, p webhook.Push) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return 0, e.err
	}
	e.pushes = append(e.pushes, p)
	if e.seen == nil {
		e.seen = make(map[string]bool)
	}
	n := 0
	for _, c := range p.Commits {
		if !e.seen[project+"@"+c] {
			e.seen[project+"@"+c] = true
			n++
		}
	}
	return n, nil
}

func (e *enqueuer) calls() []webhook.Push {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]webhook.Push(nil), e.pushes...)
}

// testLogger logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// setup starts the push handler under httptest.
func setup(t *testing.T, mod ...func(*webhook.Config)) (*httptest.Server, *enqueuer) {
	t.Helper()
	enq := &enqueuer{}
	cfg := webhook.Config{
		Secrets:  secrets{project: secret, "nosecret": ""},
		Enqueuer: enq,
		Logger:   testLogger(t),
		Rate:     rate.Inf,
	}
	for _, m := range mod {
		m(&cfg)
	}
	h, err := webhook.Handler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, enq
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(key string, body []byte) string {
	return "sha256=" + hex.EncodeToString(webhook.Sign(key, body))
}

// send posts body to path with the headers and returns the status and the
// decoded JSON answer.
func send(t *testing.T, srv *httptest.Server, path string, h http.Header, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), secret) {
		t.Errorf("answer %s echoes the secret", raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := sign(secret, body)
	tests := []struct {
		name   string
		verify func() error
		ok     bool
	}{
		{"github good", func() error { return webhook.VerifyGitHub(secret, body, good) }, true},
		{"github other secret", func() error { return webhook.VerifyGitHub(secret, body, sign("other", body)) }, false},
		{"github other body", func() error { return webhook.VerifyGitHub(secret, []byte("{}"), good) }, false},
		{"github missing", func() error { return webhook.VerifyGitHub(secret, body, "") }, false},
		{"github wrong prefix", func() error { return webhook.VerifyGitHub(secret, body, "sha1="+strings.TrimPrefix(good, "sha256=")) }, false},
		{"github no prefix", func() error { return webhook.VerifyGitHub(secret, body, strings.TrimPrefix(good, "sha256=")) }, false},
		{"github not hex", func() error { return webhook.VerifyGitHub(secret, body, "sha256=zz") }, false},
		{"github truncated", func() error { return webhook.VerifyGitHub(secret, body, good[:len(good)-2]) }, false},
		{"github empty secret", func() error { return webhook.VerifyGitHub("", body, sign("", body)) }, false},
		{"generic good", func() error { return webhook.VerifyGeneric(secret, body, good) }, true},
		{"generic bad", func() error { return webhook.VerifyGeneric(secret, body, sign("other", body)) }, false},
		{"generic missing", func() error { return webhook.VerifyGeneric(secret, body, "") }, false},
		{"generic wrong prefix", func() error {
			return webhook.VerifyGeneric(secret, body, "sha512="+strings.TrimPrefix(good, "sha256="))
		}, false},
		{"gitlab good", func() error { return webhook.VerifyGitLab(secret, secret) }, true},
		{"gitlab bad", func() error { return webhook.VerifyGitLab(secret, secret+"x") }, false},
		{"gitlab prefix of secret", func() error { return webhook.VerifyGitLab(secret, secret[:4]) }, false},
		{"gitlab missing", func() error { return webhook.VerifyGitLab(secret, "") }, false},
		{"gitlab empty secret", func() error { return webhook.VerifyGitLab("", "") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.verify()
			if tt.ok && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if !tt.ok {
				if !errors.Is(err, webhook.ErrBadSignature) {
					t.Fatalf("got %v, want ErrBadSignature", err)
				}
				if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), strings.TrimPrefix(good, "sha256=")) {
					t.Errorf("error %q echoes a secret or a signature", err)
				}
			}
		})
	}
}

func TestHandlerSignatures(t *testing.T) {
	t.Parallel()
	gh := fixture(t, "github-push.json")
	gl := fixture(t, "gitlab-push.json")
	gen := []byte(`{"repo":"https://git.example.com/app.git","ref":"main","commits":[{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}]}`)
	hexOf := func(s string) string { return strings.TrimPrefix(s, "sha256=") }
	tests := []struct {
		name     string
		provider string
		h        http.Header
		body     []byte
		want     int
	}{
		{"github good", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, gh)), gh, http.StatusAccepted},
		{"github bad", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign("wrong", gh)), gh, http.StatusUnauthorized},
		{"github missing", "github", header("X-GitHub-Event", "push"), gh, http.StatusUnauthorized},
		{"github wrong prefix", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha1="+hexOf(sign(secret, gh))), gh, http.StatusUnauthorized},
		{"github generic header", "github", header("X-GitHub-Event", "push", "X-Vigil-Signature", sign(secret, gh)), gh, http.StatusUnauthorized},
		{"gitlab good", "gitlab", header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret), gl, http.StatusAccepted},
		{"gitlab bad", "gitlab", header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "guess"), gl, http.StatusUnauthorized},
		{"gitlab missing", "gitlab", header("X-Gitlab-Event", "Push Hook"), gl, http.StatusUnauthorized},
		{"gitlab signed not token", "gitlab", header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", sign(secret, gl)), gl, http.StatusUnauthorized},
		{"generic good", "generic", header("X-Vigil-Signature", sign(secret, gen)), gen, http.StatusAccepted},
		{"generic bad", "generic", header("X-Vigil-Signature", sign("wrong", gen)), gen, http.StatusUnauthorized},
		{"generic missing", "generic", nil, gen, http.StatusUnauthorized},
		{"generic wrong prefix", "generic", header("X-Vigil-Signature", "hmac="+hexOf(sign(secret, gen))), gen, http.StatusUnauthorized},
		{"generic bare hex", "generic", header("X-Vigil-Signature", hexOf(sign(secret, gen))), gen, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, enq := setup(t)
			got, body := send(t, srv, "/hooks/"+tt.provider+"/"+project, tt.h, tt.body)
			if got != tt.want {
				t.Fatalf("status = %d (%v), want %d", got, body, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				if body["code"] != "BAD_SIGNATURE" || body["message"] == "" {
					t.Errorf("answer = %v, want code BAD_SIGNATURE and a message", body)
				}
				if calls := enq.calls(); len(calls) != 0 {
					t.Errorf("enqueued %v on a bad signature", calls)
				}
				return
			}
			if body["enqueued"] != float64(len(enq.calls()[0].Commits)) {
				t.Errorf("answer = %v, want enqueued %d", body, len(enq.calls()[0].Commits))
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		parse func(http.Header, []byte) (*webhook.Push, error)
		h     http.Header
		file  string
		want  *webhook.Push
	}{
		{
			name: "github push", parse: webhook.ParseGitHub, file: "github-push.json",
			h: header("X-GitHub-Event", "push", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
			want: &webhook.Push{
				Provider: "github", Repo: "https://github.com/acme/app.git",
				Ref: "refs/heads/main", Branch: "main",
				Before:     "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
				After:      "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
				Commits:    []string{"a10867b14bb761a232cd80139fbd4c0d33264240", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
				DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			},
		},
		{
			name: "github tag", parse: webhook.ParseGitHub, file: "github-tag.json",
			h: header("X-GitHub-Event", "push"),
			want: &webhook.Push{
				Provider: "github", Repo: "https://github.com/acme/app.git",
				Ref: "refs/tags/v1.2.0", Tag: "v1.2.0",
				Before: "0000000000000000000000000000000000000000",
				After:  "5c1e3a9f0b7d2e4c6a8b0d1f3e5a7c9b2d4f6e8a",
				// The tagged commit, not the tag object.
				Commits: []string{"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
			},
		},
		{
			name: "github branch deletion", parse: webhook.ParseGitHub, file: "github-delete.json",
			h: header("X-GitHub-Event", "push"),
			want: &webhook.Push{
				Provider: "github", Repo: "https://github.com/acme/app.git",
				Ref: "refs/heads/feature/old", Branch: "feature/old",
				Before:  "a10867b14bb761a232cd80139fbd4c0d33264240",
				After:   "0000000000000000000000000000000000000000",
				Deleted: true,
			},
		},
		{
			name: "gitlab push", parse: webhook.ParseGitLab, file: "gitlab-push.json",
			h: header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"),
			want: &webhook.Push{
				Provider: "gitlab", Repo: "https://gitlab.example.com/mike/diaspora.git",
				Ref: "refs/heads/master", Branch: "master",
				Before:     "95790bf891e76fee5e1747ab589903a6a1f80f22",
				After:      "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
				Commits:    []string{"b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
				DeliveryID: "13792a34-cac6-4fda-95a8-c58e00a3954e",
			},
		},
		{
			name: "gitlab tag", parse: webhook.ParseGitLab, file: "gitlab-tag.json",
			h: header("X-Gitlab-Event", "Tag Push Hook"),
			want: &webhook.Push{
				Provider: "gitlab", Repo: "https://gitlab.example.com/jsmith/example.git",
				Ref: "refs/tags/v1.0.0", Tag: "v1.0.0",
				Before:  "0000000000000000000000000000000000000000",
				After:   "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
				Commits: []string{"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"},
			},
		},
		{
			name: "gitlab branch deletion", parse: webhook.ParseGitLab, file: "gitlab-delete.json",
			h: header("X-Gitlab-Event", "Push Hook"),
			want: &webhook.Push{
				Provider: "gitlab", Repo: "https://gitlab.example.com/mike/diaspora.git",
				Ref: "refs/heads/feature", Branch: "feature",
				Before:  "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
				After:   "0000000000000000000000000000000000000000",
				Deleted: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.parse(tt.h, fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("push (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseGeneric(t *testing.T) {
	t.Parallel()
	const a, b = "a10867b14bb761a232cd80139fbd4c0d33264240", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	tests := []struct {
		name    string
		body    string
		want    *webhook.Push
		wantErr error
	}{
		{
			name: "branch", body: `{"repo":"https://git.example.com/app.git","ref":"refs/heads/main","commits":[{"id":"` + a + `"},{"id":"` + b + `"}]}`,
			want: &webhook.Push{Provider: "generic", Repo: "https://git.example.com/app.git", Ref: "refs/heads/main", Branch: "main", Commits: []string{a, b}},
		},
		{
			name: "bare branch name and after", body: `{"ref":"dev","after":"` + b + `","commits":[{"id":"` + a + `"}]}`,
			want: &webhook.Push{Provider: "generic", Ref: "refs/heads/dev", Branch: "dev", After: b, Commits: []string{a, b}},
		},
		{
			name: "upper-case SHAs deduplicated", body: `{"ref":"main","commits":[{"id":"` + strings.ToUpper(a) + `"},{"id":"` + a + `"}]}`,
			want: &webhook.Push{Provider: "generic", Ref: "refs/heads/main", Branch: "main", Commits: []string{a}},
		},
		{
			name: "deleted", body: `{"ref":"refs/tags/v1","deleted":true}`,
			want: &webhook.Push{Provider: "generic", Ref: "refs/tags/v1", Tag: "v1", Deleted: true},
		},
		{name: "not JSON", body: `ref=main`, wantErr: webhook.ErrMalformed},
		{name: "no ref", body: `{"commits":[{"id":"` + a + `"}]}`, wantErr: webhook.ErrMalformed},
		{name: "no commits", body: `{"ref":"main","commits":[]}`, wantErr: webhook.ErrMalformed},
		{name: "not a SHA", body: `{"ref":"main","commits":[{"id":"--upload-pack=evil"}]}`, wantErr: webhook.ErrMalformed},
		{name: "short SHA", body: `{"ref":"main","commits":[{"id":"a10867b"}]}`, wantErr: webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := webhook.ParseGeneric(http.Header{}, []byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("push (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseIgnored(t *testing.T) {
	t.Parallel()
	_, err := webhook.ParseGitHub(header("X-GitHub-Event", "ping"), []byte(`{}`))
	if !errors.Is(err, webhook.ErrPing) || !errors.Is(err, webhook.ErrIgnored) {
		t.Errorf("ping: got %v, want ErrPing and ErrIgnored", err)
	}
	_, err = webhook.ParseGitHub(header("X-GitHub-Event", "issues"), []byte(`{}`))
	if !errors.Is(err, webhook.ErrIgnored) || errors.Is(err, webhook.ErrPing) {
		t.Errorf("issues: got %v, want ErrIgnored", err)
	}
	_, err = webhook.ParseGitLab(header("X-Gitlab-Event", "Merge Request Hook"), []byte(`{}`))
	if !errors.Is(err, webhook.ErrIgnored) {
		t.Errorf("merge request: got %v, want ErrIgnored", err)
	}
	_, err = webhook.ParseGitHub(http.Header{}, []byte(`{}`))
	if !errors.Is(err, webhook.ErrMalformed) {
		t.Errorf("no event header: got %v, want ErrMalformed", err)
	}
}

func TestHandlerDeliveries(t *testing.T) {
	t.Parallel()
	gh := func(event, file string) (http.Header, []byte) {
		body := fixture(t, file)
		return header("X-GitHub-Event", event, "X-Hub-Signature-256", sign(secret, body)), body
	}
	gl := func(event, file string) (http.Header, []byte) {
		return header("X-Gitlab-Event", event, "X-Gitlab-Token", secret), fixture(t, file)
	}
	gen := func(body string) (http.Header, []byte) {
		return header("X-Vigil-Signature", sign(secret, []byte(body))), []byte(body)
	}
	tests := []struct {
		name     string
		path     string
		req      func() (http.Header, []byte)
		want     int
		wantBody map[string]any
		commits  []string // of the one push enqueued; nil when none
	}{
		{
			name: "github ping", path: "/hooks/github/app", req: func() (http.Header, []byte) { return gh("ping", "github-ping.json") },
			want: http.StatusOK, wantBody: map[string]any{"enqueued": 0.0, "ignored": "event ignored: ping"},
		},
		{
			name: "github tag push", path: "/hooks/github/app", req: func() (http.Header, []byte) { return gh("push", "github-tag.json") },
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 1.0},
			commits: []string{"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		},
		{
			name: "github branch deletion", path: "/hooks/github/app", req: func() (http.Header, []byte) { return gh("push", "github-delete.json") },
			want: http.StatusOK, wantBody: map[string]any{"enqueued": 0.0, "ignored": "refs/heads/feature/old deleted; nothing to scan"},
		},
		{
			name: "gitlab tag push", path: "/hooks/gitlab/app", req: func() (http.Header, []byte) { return gl("Tag Push Hook", "gitlab-tag.json") },
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 1.0},
			commits: []string{"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"},
		},
		{
			name: "gitlab branch deletion", path: "/hooks/gitlab/app", req: func() (http.Header, []byte) { return gl("Push Hook", "gitlab-delete.json") },
			want: http.StatusOK, wantBody: map[string]any{"enqueued": 0.0, "ignored": "refs/heads/feature deleted; nothing to scan"},
		},
		{
			name: "generic push", path: "/hooks/generic/app",
			req: func() (http.Header, []byte) {
				return gen(`{"ref":"main","commits":[{"id":"b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"}]}`)
			},
			want: http.StatusAccepted, wantBody: map[string]any{"enqueued": 1.0},
			commits: []string{"b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"},
		},
		{
			name: "malformed payload", path: "/hooks/generic/app",
			req:  func() (http.Header, []byte) { return gen(`{"ref":`) },
			want: http.StatusBadRequest, wantBody: map[string]any{"code": "BAD_PAYLOAD"},
		},
		{
			name: "unknown project", path: "/hooks/github/nope", req: func() (http.Header, []byte) { return gh("push", "github-push.json") },
			want: http.StatusUnauthorized, wantBody: map[string]any{"code": "BAD_SIGNATURE"},
		},
		{
			name: "unknown provider", path: "/hooks/bitbucket/app", req: func() (http.Header, []byte) { return gh("push", "github-push.json") },
			want: http.StatusNotFound, wantBody: map[string]any{"code": "UNKNOWN_PROVIDER"},
		},
		{
			name: "project without a secret", path: "/hooks/github/nosecret", req: func() (http.Header, []byte) {
				body := fixture(t, "github-push.json")
				return header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign("", body)), body
			},
			want: http.StatusUnauthorized, wantBody: map[string]any{"code": "BAD_SIGNATURE"},
		},
		{
			name: "lookup failure", path: "/hooks/github/broken", req: func() (http.Header, []byte) { return gh("push", "github-push.json") },
			want: http.StatusInternalServerError, wantBody: map[string]any{"code": "INTERNAL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, enq := setup(t)
			h, body := tt.req()
			got, answer := send(t, srv, tt.path, h, body)
			if got != tt.want {
				t.Fatalf("status = %d (%v), want %d", got, answer, tt.want)
			}
			for k, v := range tt.wantBody {
				if answer[k] != v {
					t.Errorf("answer[%q] = %v, want %v (answer %v)", k, answer[k], v, answer)
				}
			}
			calls := enq.calls()
			if tt.commits == nil {
				if len(calls) != 0 {
					t.Errorf("enqueued %v, want nothing", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("enqueued %d pushes, want 1", len(calls))
			}
			if diff := cmp.Diff(calls[0].Commits, tt.commits); diff != "" {
				t.Errorf("commits (-got +want):\n%s", diff)
			}
		})
	}
}

func TestHandlerRedelivery(t *testing.T) {
	t.Parallel()
	srv, enq := setup(t)
	body := fixture(t, "github-push.json")
	h := header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign(secret, body))
	for i, want := range []float64{2, 0} {
		got, answer := send(t, srv, "/hooks/github/app", h, body)
		if got != http.StatusAccepted || answer["enqueued"] != want {
			t.Errorf("delivery %d: %d %v, want 202 enqueued %v", i, got, answer, want)
		}
	}
	if n := len(enq.calls()); n != 2 {
		t.Errorf("Enqueuer called %d times, want 2", n)
	}
}

func TestHandlerLimits(t *testing.T) {
	t.Parallel()
	t.Run("body too large", func(t *testing.T) {
		t.Parallel()
		srv, enq := setup(t)
		body := bytes.Repeat([]byte(" "), webhook.MaxBodySize+1)
		got, answer := send(t, srv, "/hooks/generic/app", header("X-Vigil-Signature", sign(secret, body)), body)
		if got != http.StatusRequestEntityTooLarge || answer["code"] != "TOO_LARGE" {
			t.Errorf("got %d %v, want 413 TOO_LARGE", got, answer)
		}
		if len(enq.calls()) != 0 {
			t.Error("enqueued an oversized delivery")
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		t.Parallel()
		srv, _ := setup(t, func(c *webhook.Config) { c.Rate, c.Burst = rate.Every(time.Hour), 2 })
		var statuses []int
		for range 4 {
			got, answer := send(t, srv, "/hooks/generic/app", nil, []byte(`{}`))
			statuses = append(statuses, got)
			if got == http.StatusTooManyRequests && answer["code"] != "RATE_LIMITED" {
				t.Errorf("429 answer %v, want code RATE_LIMITED", answer)
			}
		}
		if diff := cmp.Diff(statuses, []int{401, 401, 429, 429}); diff != "" {
			t.Errorf("statuses (-got +want):\n%s", diff)
		}
	})
	t.Run("rate limited behind a trusted proxy", func(t *testing.T) {
		t.Parallel()
		// The test client's peer is loopback: as the trusted proxy, the
		// X-Forwarded-For it sends names the client, one bucket each.
		srv, _ := setup(t, func(c *webhook.Config) {
			c.Rate, c.Burst = rate.Every(time.Hour), 1
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		})
		var statuses []int
		for _, client := range []string{"198.51.100.1", "198.51.100.1", "198.51.100.2"} {
			got, _ := send(t, srv, "/hooks/generic/app", header("X-Forwarded-For", client), []byte(`{}`))
			statuses = append(statuses, got)
		}
		if diff := cmp.Diff(statuses, []int{401, 429, 401}); diff != "" {
			t.Errorf("statuses (-got +want):\n%s", diff)
		}
	})
	t.Run("X-Forwarded-For ignored from an untrusted peer", func(t *testing.T) {
		t.Parallel()
		srv, _ := setup(t, func(c *webhook.Config) { c.Rate, c.Burst = rate.Every(time.Hour), 1 })
		var statuses []int
		for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
			got, _ := send(t, srv, "/hooks/generic/app", header("X-Forwarded-For", client), []byte(`{}`))
			statuses = append(statuses, got)
		}
		if diff := cmp.Diff(statuses, []int{401, 429}); diff != "" {
			t.Errorf("statuses (-got +want):\n%s", diff)
		}
	})
	t.Run("GET", func(t *testing.T) {
		t.Parallel()
		srv, _ := setup(t)
		resp, err := srv.Client().Get(srv.URL + "/hooks/github/app")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", resp.StatusCode)
		}
	})
}

func TestHandlerConfig(t *testing.T) {
	t.Parallel()
	if _, err := webhook.Handler(webhook.Config{Enqueuer: &enqueuer{}}); err == nil {
		t.Error("Handler without Secrets: no error")
	}
	if _, err := webhook.Handler(webhook.Config{Secrets: secrets{}}); err == nil {
		t.Error("Handler without Enqueuer: no error")
	}
}

// TestUnknownProjectAnsweredAlike: without the secret, a caller cannot
// tell a project that exists from one that does not: the same status and
// body for every way of getting the signature wrong, and the same work
// (the body is read and bounded for an unknown project too).
func TestUnknownProjectAnsweredAlike(t *testing.T) {
	t.Parallel()
	srv, enq := setup(t)
	raw := func(path string, h http.Header, body []byte) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	body := fixture(t, "github-push.json")
	big := bytes.Repeat([]byte("x"), webhook.MaxBodySize+1)
	cases := []struct {
		name     string
		provider string
		h        http.Header
		body     []byte
	}{
		{"github wrong signature", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign("guess", body)), body},
		{"github no signature", "github", header("X-GitHub-Event", "push"), body},
		{"github malformed signature", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", "md5=00"), body},
		{"gitlab wrong token", "gitlab", header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "guess"), body},
		{"gitlab no token", "gitlab", header("X-Gitlab-Event", "Push Hook"), body},
		{"generic wrong signature", "generic", header("X-Vigil-Signature", sign("guess", body)), body},
		{"too large", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign("guess", big)), big},
		// A signature made with an empty secret matches neither a project
		// without a secret nor an unknown one.
		{"empty secret", "github", header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign("", body)), body},
	}
	for _, tc := range cases {
		knownCode, knownBody := raw("/hooks/"+tc.provider+"/"+project, tc.h, tc.body)
		for _, other := range []string{"nope", "nosecret"} {
			code, b := raw("/hooks/"+tc.provider+"/"+other, tc.h, tc.body)
			if code != knownCode || b != knownBody {
				t.Errorf("%s: project %q answered %d %s; an existing project %d %s", tc.name, other, code, b, knownCode, knownBody)
			}
		}
		if knownCode != http.StatusUnauthorized && knownCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d %s, want 401 or 413", tc.name, knownCode, knownBody)
		}
	}
	if calls := enq.calls(); len(calls) != 0 {
		t.Errorf("enqueued %v, want nothing", calls)
	}
}
