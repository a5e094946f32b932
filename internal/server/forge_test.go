package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vigil-sec/vigil/ci/forge"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// forgeStandIn is a GitHub-compatible statuses endpoint that records what
// it is sent and answers with the given codes in turn (repeating the
// last).
type forgeStandIn struct {
	*httptest.Server
	mu    sync.Mutex
	codes []int
	seen  []forgeRequest
}

type forgeRequest struct {
	Path, Auth string
	Status     forge.Status
	Answer     int
}

func newForgeStandIn(t *testing.T, codes ...int) *forgeStandIn {
	f := &forgeStandIn{codes: codes}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var st forge.Status
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &st); err != nil {
			t.Errorf("forge got body %q: %v", b, err)
		}
		f.mu.Lock()
		code := f.codes[0]
		if len(f.codes) > 1 {
			f.codes = f.codes[1:]
		}
		f.seen = append(f.seen, forgeRequest{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Status: st, Answer: code})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, `{"message":"stand-in"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *forgeStandIn) requests() []forgeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]forgeRequest(nil), f.seen...)
}

// waitFor polls until cond holds; the deadline catches a hang, not
// slowness.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 3 minutes for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const (
	forgeToken = "ghp_forgeSecretToken0123456789"
	publicURL  = "https://vigil.test:8443"
)

// createForgeProject creates a project of the repository at dir whose
// forge is f, and checks that the API never shows the token.
func (e *env) createForgeProject(name, dir string, f *forgeStandIn) {
	e.t.Helper()
	body := map[string]any{
		"name": name, "repo_url": "file://" + dir, "webhook_secret": webhookSecret,
		"forge": map[string]string{"url": f.URL + "/api/v3/", "token": forgeToken},
	}
	var raw json.RawMessage
	if code := e.do("POST", "/api/v1/projects", body, &raw); code != http.StatusCreated {
		e.t.Fatalf("create project with a forge: %d %s", code, raw)
	}
	var p struct {
		Forge struct{ URL string }
	}
	json.Unmarshal(raw, &p)
	if p.Forge.URL != f.URL+"/api/v3" || strings.Contains(string(raw), forgeToken) {
		e.t.Errorf("created project %s: want forge.url %s/api/v3 and no token", raw, f.URL)
	}
	if code := e.do("GET", "/api/v1/projects", nil, &raw); code != 200 || !strings.Contains(string(raw), f.URL+"/api/v3") || strings.Contains(string(raw), forgeToken) {
		e.t.Errorf("project list %d %s: want the forge URL and no token", code, raw)
	}
}

func TestCommitStatus(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, logs := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) { c.PublicURL = publicURL }})
		ctx := context.Background()
		r, clean, weak := repo(t)
		// The first answer is a server error: the status is posted again.
		f := newForgeStandIn(t, http.StatusInternalServerError, http.StatusCreated)
		e.createForgeProject("app", r.Dir, f)

		// The token is sealed at rest.
		p, err := e.db.GetProjectByName(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		stored, err := e.db.GetForge(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored.Token, forgeToken) || !strings.HasPrefix(stored.Token, "aesgcm1:") {
			t.Errorf("stored forge token %q: want it sealed", stored.Token)
		}

		owner, name, err := forge.ParseRepo("file://" + r.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			commit, state, description string
		}{
			{weak, forge.StateFailure, "Vigil gate failed: 1 failing finding"},
			{clean, forge.StateSuccess, "Vigil gate passed: no failing findings"},
		} {
			var ref struct{ ID string }
			if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": tc.commit}, &ref); code != http.StatusAccepted {
				t.Fatalf("POST scan: %d", code)
			}
			if s := e.waitScan(ref.ID); s.Status != "succeeded" {
				t.Fatalf("scan %s: %s %s", ref.ID, s.Status, s.Error)
			}
			path := "/api/v3/repos/" + owner + "/" + name + "/statuses/" + tc.commit
			final := func() []forgeRequest {
				var out []forgeRequest
				for _, req := range f.requests() {
					if req.Path == path && req.Answer == http.StatusCreated && req.Status.State == tc.state {
						out = append(out, req)
					}
				}
				return out
			}
			waitFor(t, "the final status of "+tc.commit, func() bool { return len(final()) > 0 })
			got := final()[0]
			want := forge.Status{State: tc.state, TargetURL: publicURL + "/api/v1/scans/" + ref.ID, Description: tc.description, Context: "vigil/gate"}
			if got.Status != want || got.Auth != "Bearer "+forgeToken {
				t.Errorf("final status of %s = %+v, auth %q; want %+v, the bearer token", tc.commit, got.Status, got.Auth, want)
			}
			// Whatever else was posted for the commit is pending (the
			// scan started) or the final state: never another.
			for _, req := range f.requests() {
				if req.Path == path && req.Status.State != forge.StatePending && req.Status.State != tc.state {
					t.Errorf("status %+v posted for %s", req.Status, tc.commit)
				}
			}
		}
		// The first attempt got a 500 and was retried.
		if reqs := f.requests(); len(reqs) == 0 || reqs[0].Answer != http.StatusInternalServerError {
			t.Errorf("first request answered %v, want the stand-in's 500", reqs)
		}
		if !strings.Contains(logs.String(), "commit status not posted") {
			t.Errorf("the failed attempt was not logged")
		}
		if strings.Contains(logs.String(), forgeToken) {
			t.Errorf("the forge token is in the server log")
		}

		// A rescan posts nothing.
		first, err := e.db.FindCommitScan(ctx, p.ID, clean)
		if err != nil {
			t.Fatal(err)
		}
		rescan, _, err := e.db.EnqueueRescan(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		before := len(f.requests())
		if err := e.srv.Pipeline().PostCommitStatus(ctx, rescan.ID); err != nil {
			t.Errorf("PostCommitStatus(rescan) = %v", err)
		}
		if n := len(f.requests()); n != before {
			t.Errorf("a rescan posted %d statuses, want none", n-before)
		}
	})
}

// TestCommitStatusRefused: a 4xx from the forge (a token without the
// right) is not retried, and the scan does not mind.
func TestCommitStatusRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, logs := newEnv(t, dialect, envConfig{start: true})
		r, clean, _ := repo(t)
		f := newForgeStandIn(t, http.StatusUnprocessableEntity)
		e.createForgeProject("app", r.Dir, f)

		var ref struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &ref); code != http.StatusAccepted {
			t.Fatalf("POST scan: %d", code)
		}
		if s := e.waitScan(ref.ID); s.Status != "succeeded" || s.Gate.Decision != "pass" {
			t.Fatalf("scan %s: %s %s %s", ref.ID, s.Status, s.Error, s.Gate.Decision)
		}
		// Both status jobs (scan started, scan finished) end cancelled,
		// each after one request.
		states := func() []string {
			rows, err := e.db.SQL().Query("SELECT state FROM river_job WHERE kind = 'commit_status' ORDER BY id")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var s string
				rows.Scan(&s)
				out = append(out, s)
			}
			return out
		}
		waitFor(t, "the status jobs to end", func() bool {
			s := states()
			return len(s) == 2 && s[0] == "cancelled" && s[1] == "cancelled"
		})
		if n := len(f.requests()); n != 2 {
			t.Errorf("the forge got %d requests, want 2 (one per job, no retries)", n)
		}
		if !strings.Contains(logs.String(), "not retrying") || strings.Contains(logs.String(), forgeToken) {
			t.Errorf("want the refusal logged without the token")
		}
	})
}

// TestCommitStatusPendingAndValidation: a queued scan reads as pending,
// and bad forges are refused with a message naming the field.
func TestCommitStatusPendingAndValidation(t *testing.T) {
	e, _ := newEnv(t, store.SQLite, envConfig{modify: func(c *server.Config) { c.PublicURL = publicURL + "/" }})
	r, clean, _ := repo(t)
	f := newForgeStandIn(t, http.StatusCreated)

	for name, tc := range map[string]struct {
		repoURL string
		forge   map[string]string
		field   string
	}{
		"plain http off loopback": {"file://" + r.Dir, map[string]string{"url": "http://forge.example.com/api/v3", "token": forgeToken}, "forge.url"},
		"credentials in the url":  {"file://" + r.Dir, map[string]string{"url": "https://x:" + forgeToken + "@forge.example.com", "token": forgeToken}, "forge.url"},
		"no url":                  {"file://" + r.Dir, map[string]string{"token": forgeToken}, "forge.url"},
		"no token":                {"file://" + r.Dir, map[string]string{"url": f.URL}, "forge.token"},
		"token with a newline":    {"file://" + r.Dir, map[string]string{"url": f.URL, "token": "abc\ndef"}, "forge.token"},
		"repo without an owner":   {"https://github.com/app", map[string]string{"url": f.URL, "token": forgeToken}, "repo_url"},
	} {
		var apiErr struct{ Code, Message string }
		code := e.do("POST", "/api/v1/projects", map[string]any{"name": "bad", "repo_url": tc.repoURL, "webhook_secret": webhookSecret, "forge": tc.forge}, &apiErr)
		if code != http.StatusBadRequest || apiErr.Code != "INVALID_FIELD" || !strings.Contains(apiErr.Message, tc.field) {
			t.Errorf("%s: %d %+v; want 400 naming %s", name, code, apiErr, tc.field)
		}
		if strings.Contains(apiErr.Message, forgeToken) {
			t.Errorf("%s: the error shows the token: %s", name, apiErr.Message)
		}
	}

	e.createForgeProject("app", r.Dir, f)
	var ref struct{ ID, Status string }
	if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &ref); code != http.StatusAccepted || ref.Status != "queued" {
		t.Fatalf("POST scan: %d %+v", code, ref)
	}
	if err := e.srv.Pipeline().PostCommitStatus(context.Background(), ref.ID); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	want := forge.Status{State: forge.StatePending, TargetURL: publicURL + "/api/v1/scans/" + ref.ID, Description: "Vigil: scan queued", Context: "vigil/gate"}
	if len(reqs) != 1 || reqs[0].Status != want {
		t.Errorf("statuses posted for a queued scan: %+v; want one %+v", reqs, want)
	}
}

// TestPublicURLIsTheTokenIssuer: tokens carry the public URL as their
// issuer, and a server with another public URL refuses them, although it
// shares the database and so the signing key.
func TestPublicURLIsTheTokenIssuer(t *testing.T) {
	e, _ := newEnv(t, store.SQLite, envConfig{modify: func(c *server.Config) { c.PublicURL = publicURL }})
	tok, err := e.api.Transport.(*oauth2.Transport).Source.Token()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Iss string }
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Iss != publicURL {
		t.Fatalf("token issuer %q (%v), want %q", claims.Iss, err, publicURL)
	}

	get := func(h http.Handler) int {
		req := httptest.NewRequest("GET", "/api/v1/projects", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := get(e.srv.Handler()); code != http.StatusOK {
		t.Errorf("the issuing server answered %d, want 200", code)
	}
	for name, url := range map[string]string{"another public URL": "https://other.test", "none (the default issuer)": ""} {
		blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		// Another process of the installation: the same store and seal key.
		other, err := server.New(context.Background(), server.Config{DB: e.db, Blobs: blobs, SealKey: e.sealKey, PublicURL: url, Logger: storetest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if code := get(other.Handler()); code != http.StatusUnauthorized {
			t.Errorf("a server with %s answered %d, want 401", name, code)
		}
	}

	if _, err := server.New(context.Background(), server.Config{DB: e.db, Blobs: &store.Blobs{}, SealKey: make([]byte, server.SealKeySize), PublicURL: "vigil.test"}); err == nil || !strings.Contains(err.Error(), "public URL") {
		t.Errorf("a public URL without a scheme: %v, want an error naming it", err)
	}
}
