package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

type answer struct {
	code     int
	header   http.Header
	body     string
	apiError struct{ Code, Message string }
}

// postKey POSTs body with an Idempotency-Key (none if key is empty).
func (e *env) postKey(c *http.Client, path, key string, body any) answer {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest("POST", e.ts.URL+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(server.IdempotencyKeyHeader, key)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, body: string(rb)}
	if a.code >= 400 {
		json.Unmarshal(rb, &a.apiError)
	}
	return a
}

func TestIdempotencyKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		// Workers are not started: scans stay queued.
		e, _ := newEnv(t, dialect, envConfig{})
		r, clean, _ := repo(t)
		project := map[string]any{"name": "app", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret}

		// A project create, retried with its key, is replayed: same
		// status, body and Location; one project exists.
		first := e.postKey(e.api, "/api/v1/projects", "create-app-1", project)
		if first.code != http.StatusCreated || first.header.Get(server.IdempotentReplayedHeader) != "" {
			t.Fatalf("first create: %d %s", first.code, first.body)
		}
		again := e.postKey(e.api, "/api/v1/projects", "create-app-1", project)
		if again.code != first.code || again.body != first.body || again.header.Get("Location") != first.header.Get("Location") ||
			again.header.Get(server.IdempotentReplayedHeader) != "true" || again.header.Get("Content-Type") != first.header.Get("Content-Type") {
			t.Errorf("retried create: %d %v %s; want the first answer replayed (%d %s)", again.code, again.header, again.body, first.code, first.body)
		}
		var list struct{ Projects []struct{ Name string } }
		if code := e.do("GET", "/api/v1/projects", nil, &list); code != 200 || len(list.Projects) != 1 {
			t.Errorf("projects after a replayed create: %d %+v, want one", code, list)
		}
		// Without a key the same create runs again (and conflicts).
		if a := e.postKey(e.api, "/api/v1/projects", "", project); a.code != http.StatusConflict {
			t.Errorf("create without a key: %d %s, want 409", a.code, a.body)
		}

		// The same key with another body, or on another endpoint, is refused.
		other := map[string]any{"name": "app2", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret}
		if a := e.postKey(e.api, "/api/v1/projects", "create-app-1", other); a.code != http.StatusUnprocessableEntity || a.apiError.Code != server.CodeIdempotencyKeyReused {
			t.Errorf("key reused with another body: %d %s, want 422 %s", a.code, a.body, server.CodeIdempotencyKeyReused)
		}
		if a := e.postKey(e.api, "/api/v1/scans", "create-app-1", project); a.code != http.StatusUnprocessableEntity || a.apiError.Code != server.CodeIdempotencyKeyReused {
			t.Errorf("key reused on another endpoint: %d %s, want 422", a.code, a.body)
		}

		// A scan create is replayed as it was: 202 Accepted (without the
		// key, the repeat would be 200 with the existing scan).
		scan := map[string]any{"project": "app", "commit": clean}
		s1 := e.postKey(e.api, "/api/v1/scans", "scan-1", scan)
		s2 := e.postKey(e.api, "/api/v1/scans", "scan-1", scan)
		if s1.code != http.StatusAccepted || s2.code != http.StatusAccepted || s2.body != s1.body || s2.header.Get(server.IdempotentReplayedHeader) != "true" {
			t.Errorf("scan create and its retry: %d %s / %d %s; want 202 twice, the same body", s1.code, s1.body, s2.code, s2.body)
		}
		if a := e.postKey(e.api, "/api/v1/scans", "", scan); a.code != http.StatusOK {
			t.Errorf("scan create without a key: %d, want 200", a.code)
		}

		// Keys are per client: another client's same key runs the request.
		id, secret, err := e.srv.OAuth().CreateClient(context.Background(), "other", []string{server.ScopeAdmin})
		if err != nil {
			t.Fatal(err)
		}
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
		otherClient := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client()))
		if a := e.postKey(otherClient, "/api/v1/projects", "create-app-1", project); a.code != http.StatusConflict || a.header.Get(server.IdempotentReplayedHeader) != "" {
			t.Errorf("another client's key: %d %s; want the request run (409, the name exists)", a.code, a.body)
		}

		// Bad keys are refused; unauthenticated requests store nothing.
		for _, k := range []string{strings.Repeat("k", server.MaxIdempotencyKey+1), "has space", "tab\tkey", "é"} {
			if a := e.postKey(e.api, "/api/v1/projects", k, other); a.code != http.StatusBadRequest || !strings.Contains(a.apiError.Message, server.IdempotencyKeyHeader) {
				t.Errorf("key %q: %d %s, want 400 naming the header", k, a.code, a.body)
			}
		}
		if a := e.postKey(e.ts.Client(), "/api/v1/projects", "anon-1", other); a.code != http.StatusUnauthorized {
			t.Errorf("no token: %d, want 401", a.code)
		}
		if a := e.postKey(e.api, "/api/v1/projects", "anon-1", other); a.code != http.StatusCreated {
			t.Errorf("the key of a refused unauthenticated request was stored: %d %s", a.code, a.body)
		}
		// A validation error is an answer too: replayed.
		bad := map[string]any{"name": "bad name!", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret}
		b1 := e.postKey(e.api, "/api/v1/projects", "bad-1", bad)
		b2 := e.postKey(e.api, "/api/v1/projects", "bad-1", bad)
		if b1.code != http.StatusBadRequest || b2.code != b1.code || b2.body != b1.body || b2.header.Get(server.IdempotentReplayedHeader) != "true" {
			t.Errorf("validation error and its retry: %d / %d %v", b1.code, b2.code, b2.header)
		}

		// Licensing writes take keys too.
		tenant := map[string]any{"name": "Acme"}
		t1 := e.postKey(e.api, "/api/v1/tenants", "tenant-1", tenant)
		t2 := e.postKey(e.api, "/api/v1/tenants", "tenant-1", tenant)
		if t1.code != http.StatusCreated || t2.body != t1.body || t2.header.Get(server.IdempotentReplayedHeader) != "true" {
			t.Errorf("tenant create and its retry: %d %s / %d %s", t1.code, t1.body, t2.code, t2.body)
		}

		// An entitlement's activation code is shown once: its replay shows
		// it again to the same client, but the store holds it sealed.
		var tn struct{ ID string }
		json.Unmarshal([]byte(t1.body), &tn)
		e.postKey(e.api, "/api/v1/products", "", map[string]any{"id": "app", "name": "App"})
		ent := map[string]any{"tenant_id": tn.ID, "product_id": "app", "seats": 1}
		e1 := e.postKey(e.api, "/api/v1/entitlements", "ent-1", ent)
		e2 := e.postKey(e.api, "/api/v1/entitlements", "ent-1", ent)
		var created struct {
			ActivationCode string `json:"activation_code"`
		}
		json.Unmarshal([]byte(e1.body), &created)
		if e1.code != http.StatusCreated || created.ActivationCode == "" || e2.body != e1.body {
			t.Fatalf("entitlement create and its retry: %d %s / %d %s", e1.code, e1.body, e2.code, e2.body)
		}
		rows, err := e.db.SQL().Query("SELECT body FROM idempotency_keys")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			n++
			if bytes.Contains(b, []byte(created.ActivationCode)) || bytes.Contains(b, []byte(`"id"`)) {
				t.Errorf("a stored answer is in clear: %.80s", b)
			}
		}
		if n == 0 {
			t.Error("no stored answers read")
		}
	})
}

// TestIdempotencyKeyConcurrent sends one project create with one key from
// many goroutines at once: it runs once; every other answer is the
// replay or 409 IDEMPOTENCY_KEY_IN_USE, never the store's "name exists"
// conflict that a second run would meet.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		r, _, _ := repo(t)
		project := map[string]any{"name": "app", "repo_url": "file://" + r.Dir, "webhook_secret": webhookSecret}
		// Take a token first, so the goroutines share it.
		if code := e.do("GET", "/api/v1/projects", nil, nil); code != 200 {
			t.Fatalf("GET projects: %d", code)
		}
		const n = 12
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { answers[i] = e.postKey(e.api, "/api/v1/projects", "concurrent-1", project) })
		}
		wg.Wait()
		created := ""
		for i, a := range answers {
			switch {
			case a.code == http.StatusCreated:
				if created != "" && a.body != created {
					t.Errorf("answer %d: another project: %s vs %s", i, a.body, created)
				}
				created = a.body
			case a.code == http.StatusConflict && a.apiError.Code == server.CodeIdempotencyKeyInUse:
				if a.header.Get("Retry-After") == "" {
					t.Errorf("answer %d: 409 in use without Retry-After", i)
				}
			default:
				t.Errorf("answer %d: %d %s; want 201 or 409 %s", i, a.code, a.body, server.CodeIdempotencyKeyInUse)
			}
		}
		if created == "" {
			t.Errorf("no answer was 201")
		}
		// Once done, the key replays.
		if a := e.postKey(e.api, "/api/v1/projects", "concurrent-1", project); a.code != http.StatusCreated || a.body != created {
			t.Errorf("after the race: %d %s, want the replay of %s", a.code, a.body, created)
		}
	})
}
