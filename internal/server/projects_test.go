package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestCreateProjectAtomic: a project whose policy cannot be written is not
// created at all, with its forge; the name stays free.
func TestCreateProjectAtomic(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		stmts := []string{`CREATE TRIGGER fail_policies BEFORE INSERT ON policies BEGIN SELECT RAISE(ABORT, 'policy write failed'); END`}
		if dialect == store.Postgres {
			stmts = []string{
				`CREATE FUNCTION fail_policies() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'policy write failed'; END $$`,
				`CREATE TRIGGER fail_policies BEFORE INSERT ON policies FOR EACH ROW EXECUTE FUNCTION fail_policies()`,
			}
		}
		for _, q := range stmts {
			if _, err := e.db.SQL().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		body := map[string]any{
			"name": "app", "repo_url": "https://github.com/acme/app", "webhook_secret": webhookSecret,
			"policy": "fail_on:\n  severity: high\n", "forge": map[string]any{"url": "https://api.github.com", "token": "t0ken"},
		}
		var out struct{ Code, Message string }
		if code := e.do("POST", "/api/v1/projects", body, &out); code != http.StatusInternalServerError || out.Code != "INTERNAL" {
			t.Errorf("create with a failing policy write: %d %+v, want 500 INTERNAL", code, out)
		}
		if _, err := e.db.GetProjectByName(context.Background(), "app"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the project was left behind: %v", err)
		}
		var forges int
		if err := e.db.SQL().QueryRow("SELECT count(*) FROM project_forges").Scan(&forges); err != nil || forges != 0 {
			t.Errorf("%d forges left behind (%v)", forges, err)
		}
		delete(body, "policy")
		if code := e.do("POST", "/api/v1/projects", body, nil); code != http.StatusCreated {
			t.Errorf("create again without a policy: %d, want 201", code)
		}
	})
}

// TestGetAndPageProjects: the Location of a created project answers it,
// and the project list pages like the other lists.
func TestGetAndPageProjects(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		for _, name := range []string{"one", "two", "three"} {
			req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/projects", jsonBody(t, map[string]any{
				"name": name, "repo_url": "https://github.com/acme/" + name, "webhook_secret": webhookSecret,
				"policy": "fail_on:\n  severity: high\n", "forge": map[string]any{"url": "https://api.github.com", "token": "t0ken"},
			}))
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.api.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusCreated || loc != "/api/v1/projects/"+name {
				t.Fatalf("create %s: %d, Location %q", name, resp.StatusCode, loc)
			}
			var p struct {
				Name          string
				PolicyVersion int `json:"policy_version"`
				Forge         *struct{ URL string }
			}
			if code := e.do("GET", loc, nil, &p); code != 200 || p.Name != name || p.PolicyVersion != 1 || p.Forge == nil || p.Forge.URL != "https://api.github.com" {
				t.Errorf("GET %s: %d %+v", loc, code, p)
			}
		}
		if code := e.do("GET", "/api/v1/projects/nope", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET an unknown project: %d, want 404", code)
		}

		var names []string
		path := "/api/v1/projects?limit=2"
		for range 5 {
			var page struct {
				Projects []struct {
					Name          string
					PolicyVersion int `json:"policy_version"`
				}
				NextCursor string `json:"next_cursor"`
			}
			if code := e.do("GET", path, nil, &page); code != 200 || len(page.Projects) > 2 {
				t.Fatalf("GET %s: %d %+v", path, code, page)
			}
			for _, p := range page.Projects {
				names = append(names, p.Name)
				if p.PolicyVersion != 1 {
					t.Errorf("project %s in the list: policy_version %d, want 1", p.Name, p.PolicyVersion)
				}
			}
			if page.NextCursor == "" {
				break
			}
			path = "/api/v1/projects?limit=2&cursor=" + page.NextCursor
		}
		if len(names) != 3 || names[0] != "one" || names[2] != "three" {
			t.Errorf("paged projects %v, want one two three", names)
		}
		for _, bad := range []string{"?limit=0", "?limit=100000", "?cursor=bm9wZQ"} {
			if code := e.do("GET", "/api/v1/projects"+bad, nil, nil); code != http.StatusBadRequest {
				t.Errorf("GET /api/v1/projects%s: %d, want 400", bad, code)
			}
		}
	})
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
