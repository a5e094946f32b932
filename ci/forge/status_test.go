package forge_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/forge"
)

const (
	token = "ghp_secretTokenValue"
	sha   = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
)

// request is what the forge stand-in saw.
type request struct {
	Method, Path, Auth, Accept, ContentType string
	Body                                    forge.Status
}

// newForge serves the statuses endpoint, answering with the given status
// codes in turn (repeating the last) and recording each request.
func newForge(t *testing.T, codes ...int) (*httptest.Server, func() []request) {
	t.Helper()
	var mu sync.Mutex
	var seen []request
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var st forge.Status
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &st); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
		mu.Lock()
		seen = append(seen, request{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Accept"), r.Header.Get("Content-Type"), st})
		code := codes[0]
		if len(codes) > 1 {
			codes = codes[1:]
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code >= 400 {
			io.WriteString(w, `{"message":"nope","documentation_url":"https://docs.github.com/rest"}`)
			return
		}
		io.WriteString(w, `{"id":1,"state":"success"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return append([]request(nil), seen...)
	}
}

func config(srv *httptest.Server) forge.Config {
	return forge.Config{APIURL: srv.URL + "/api/v3/", Token: token, HTTPClient: srv.Client(), RetryWait: time.Millisecond}
}

func TestPostStatus(t *testing.T) {
	t.Parallel()
	srv, seen := newForge(t, http.StatusCreated)
	long := strings.Repeat("é", 200)
	err := forge.PostStatus(context.Background(), config(srv), "git@github.com:acme/app.git", sha, forge.Status{
		State: forge.StateFor(ci.Fail), TargetURL: "https://vigil.test/api/v1/scans/7", Description: long,
	})
	if err != nil {
		t.Fatalf("PostStatus: %v", err)
	}
	want := []request{{
		Method: "POST", Path: "/api/v3/repos/acme/app/statuses/" + sha,
		Auth: "Bearer " + token, Accept: "application/vnd.github+json", ContentType: "application/json",
		Body: forge.Status{State: "failure", TargetURL: "https://vigil.test/api/v1/scans/7", Description: strings.Repeat("é", 139) + "…", Context: "vigil/gate"},
	}}
	if diff := cmp.Diff(want, seen()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestPostStatusRetries5xx(t *testing.T) {
	t.Parallel()
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		srv, seen := newForge(t, 502, 503, 201)
		if err := forge.PostStatus(context.Background(), config(srv), "acme/app", sha, forge.Status{State: forge.StateSuccess}); err != nil {
			t.Fatalf("PostStatus: %v", err)
		}
		if n := len(seen()); n != 3 {
			t.Errorf("requests = %d, want 3", n)
		}
	})
	t.Run("gives up after two retries", func(t *testing.T) {
		t.Parallel()
		srv, seen := newForge(t, 500)
		err := forge.PostStatus(context.Background(), config(srv), "acme/app", sha, forge.Status{State: forge.StateSuccess})
		var fe *forge.Error
		if !errors.As(err, &fe) || fe.StatusCode != 500 || fe.Repo != "acme/app" {
			t.Fatalf("error = %v, want a *forge.Error 500 for acme/app", err)
		}
		if n := len(seen()); n != 3 {
			t.Errorf("requests = %d, want 3", n)
		}
	})
	t.Run("one attempt leaves retries to the caller", func(t *testing.T) {
		t.Parallel()
		srv, seen := newForge(t, 503, 201)
		cfg := config(srv)
		cfg.Attempts = 1
		err := forge.PostStatus(context.Background(), cfg, "acme/app", sha, forge.Status{State: forge.StateSuccess})
		var fe *forge.Error
		if !errors.As(err, &fe) || fe.StatusCode != 503 {
			t.Fatalf("error = %v, want a *forge.Error 503", err)
		}
		if n := len(seen()); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
	t.Run("4xx is not retried", func(t *testing.T) {
		t.Parallel()
		srv, seen := newForge(t, 404)
		err := forge.PostStatus(context.Background(), config(srv), "https://github.com/acme/app", sha, forge.Status{State: forge.StateSuccess})
		if err == nil || !strings.Contains(err.Error(), "acme/app") || !strings.Contains(err.Error(), "404: nope") {
			t.Errorf("error = %v, want one naming acme/app, 404 and the forge's message", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error %q contains the token", err)
		}
		if n := len(seen()); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
}

func TestPostStatusErrorsNeverShowTheToken(t *testing.T) {
	t.Parallel()
	srv, _ := newForge(t, 401)
	cases := map[string]func() error{
		"refused": func() error {
			return forge.PostStatus(context.Background(), config(srv), "acme/app", sha, forge.Status{State: forge.StateError})
		},
		"unreachable": func() error {
			cfg := config(srv)
			cfg.APIURL = "https://127.0.0.1:1"
			return forge.PostStatus(context.Background(), cfg, "acme/app", sha, forge.Status{State: forge.StateError})
		},
		"bad state": func() error {
			return forge.PostStatus(context.Background(), config(srv), "acme/app", sha, forge.Status{State: "green"})
		},
		"bad sha": func() error {
			return forge.PostStatus(context.Background(), config(srv), "acme/app", "../../x", forge.Status{State: forge.StateSuccess})
		},
		"token as user name in the repo URL": func() error {
			return forge.PostStatus(context.Background(), config(srv), "https://"+token+"@github.com/acme", sha, forge.Status{State: forge.StateSuccess})
		},
		"credentials in the repo URL": func() error {
			return forge.PostStatus(context.Background(), config(srv), "https://x:"+token+"@github.com/acme", sha, forge.Status{State: forge.StateSuccess})
		},
	}
	for name, call := range cases {
		err := call()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if strings.Contains(err.Error(), token) {
			t.Errorf("%s: error %q contains the token", name, err)
		}
	}
}

func TestParseRepo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		owner, repo string
		wantErr     bool
	}{
		{in: "acme/app", owner: "acme", repo: "app"},
		{in: "https://github.com/acme/app", owner: "acme", repo: "app"},
		{in: "https://github.com/acme/app.git", owner: "acme", repo: "app"},
		{in: "https://github.com/acme/app/", owner: "acme", repo: "app"},
		{in: "https://user:pw@ghe.example.com/acme/app.git", owner: "acme", repo: "app"},
		{in: "ssh://git@github.com/acme/app.git", owner: "acme", repo: "app"},
		{in: "ssh://git@gitea.example.com:2222/acme/app.git", owner: "acme", repo: "app"},
		{in: "git@github.com:acme/app.git", owner: "acme", repo: "app"},
		{in: "git@github.com:acme/app", owner: "acme", repo: "app"},
		{in: "file:///srv/git/acme/app.git", owner: "acme", repo: "app"},
		{in: "file:///acme/app", owner: "acme", repo: "app"},
		{in: "file:///app", wantErr: true},
		{in: "", wantErr: true},
		{in: "app", wantErr: true},
		{in: "https://github.com/acme", wantErr: true},
		{in: "https://gitlab.com/group/sub/app.git", wantErr: true},
		{in: "git@github.com:", wantErr: true},
	}
	for _, tt := range tests {
		owner, repo, err := forge.ParseRepo(tt.in)
		if (err != nil) != tt.wantErr || owner != tt.owner || repo != tt.repo {
			t.Errorf("ParseRepo(%q) = %q, %q, %v; want %q, %q, error %v", tt.in, owner, repo, err, tt.owner, tt.repo, tt.wantErr)
		}
	}
}

func TestStateFor(t *testing.T) {
	t.Parallel()
	for decision, want := range map[string]string{
		ci.Pass: "success", ci.Fail: "failure", ci.Pending: "pending", ci.Unknown: "error", "": "error",
	} {
		if got := forge.StateFor(decision); got != want {
			t.Errorf("StateFor(%q) = %q, want %q", decision, got, want)
		}
	}
}
