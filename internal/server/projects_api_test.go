package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

type projectJSON struct {
	ID            string
	Name          string
	RepoURL       string `json:"repo_url"`
	DefaultBranch string `json:"default_branch"`
	Schedule      string
	PolicyVersion int `json:"policy_version"`
	Forge         *struct{ URL string }
}

func TestUpdateProject(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		var created projectJSON
		if code := e.do("POST", "/api/v1/projects", map[string]any{
			"name": "app", "repo_url": "https://github.com/acme/app", "webhook_secret": webhookSecret,
			"policy": "fail_on:\n  severity: high\n", "forge": map[string]any{"url": "https://api.github.com", "token": "t0ken"},
		}, &created); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		if server.TakeRescanSchedule(e.srv, created.ID) {
			t.Fatal("a project without a schedule has a periodic rescan")
		}
		get := func() projectJSON {
			var p projectJSON
			if code := e.do("GET", "/api/v1/projects/app", nil, &p); code != 200 {
				t.Fatalf("GET: %d", code)
			}
			return p
		}

		// Only what is given changes, and a new schedule is scheduled.
		var p projectJSON
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"schedule": " 0 3 * * * "}, &p); code != 200 {
			t.Fatalf("PATCH schedule: %d", code)
		}
		if p.Schedule != "0 3 * * *" || p.RepoURL != created.RepoURL || p.DefaultBranch != "main" || p.PolicyVersion != 1 || p.Forge == nil || p.Forge.URL != "https://api.github.com" {
			t.Errorf("after PATCH schedule: %+v", p)
		}
		if !server.TakeRescanSchedule(e.srv, created.ID) {
			t.Error("PATCH schedule did not schedule the project's rescans")
		}
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"repo_url": "https://github.com/acme/app2", "default_branch": "dev",
			"forge": map[string]any{"url": "https://git.example.com/api/v1/", "token": "t0ken-2"}}, &p); code != 200 {
			t.Fatalf("PATCH repo and forge: %d", code)
		}
		if p.RepoURL != "https://github.com/acme/app2" || p.DefaultBranch != "dev" || p.Schedule != "0 3 * * *" || p.Forge == nil || p.Forge.URL != "https://git.example.com/api/v1" {
			t.Errorf("after PATCH repo and forge: %+v", p)
		}
		if server.TakeRescanSchedule(e.srv, created.ID) {
			// PATCH without a schedule leaves the periodic job as it was
			// (taken above): not scheduled again.
			t.Error("a PATCH without schedule rescheduled the rescans")
		}
		f, err := e.db.GetForge(context.Background(), created.ID)
		if err != nil || f.Token == "t0ken-2" || !strings.HasPrefix(f.Token, "aesgcm1:") {
			t.Errorf("the new forge token is not sealed at rest: %q %v", f.Token, err)
		}
		before := get()

		// Bad input is refused, names the field, and changes nothing.
		for _, tc := range []struct {
			body      any
			code, msg string
		}{
			{map[string]any{"repo_url": "ftp://x/y"}, "INVALID_FIELD", "repo_url"},
			{map[string]any{"repo_url": ""}, "INVALID_FIELD", "repo_url"},
			{map[string]any{"repo_url": "HTTP://github.com/acme/app"}, "INVALID_FIELD", "repo_url"}, // not as git spells it
			{map[string]any{"repo_url": "-uhttps://x/y"}, "INVALID_FIELD", "repo_url"},
			{map[string]any{"repo_url": "https://github.com/acme/a\u200bpp"}, "INVALID_FIELD", "repo_url"},
			{map[string]any{"repo_url": "file:///app"}, "INVALID_FIELD", "forge"}, // the forge needs HOST/OWNER/REPO
			{map[string]any{"default_branch": ""}, "INVALID_FIELD", "default_branch"},
			{map[string]any{"default_branch": "a b"}, "INVALID_FIELD", "default_branch"},
			{map[string]any{"default_branch": "ma\nin"}, "INVALID_FIELD", "default_branch"},
			{map[string]any{"schedule": "not cron"}, "INVALID_FIELD", "schedule"},
			{map[string]any{"schedule": "@every 1s", "repo_url": "nope"}, "INVALID_FIELD", "repo_url"},
			{map[string]any{"name": "other"}, "UNKNOWN_FIELD", "name"},
			{map[string]any{"webhook_secret": "0123456789abcdefgh"}, "UNKNOWN_FIELD", "webhook_secret"},
			{map[string]any{"policy": "fail_on: {}"}, "UNKNOWN_FIELD", "policy"},
			{map[string]any{"Schedule": ""}, "UNKNOWN_FIELD", "case-sensitive"},
			{map[string]any{"forge": map[string]any{"url": "https://api.github.com"}}, "INVALID_FIELD", "forge.token"},
			{map[string]any{"forge": map[string]any{"url": "http://api.github.com", "token": "t"}}, "INVALID_FIELD", "forge.url"},
			{map[string]any{"forge": map[string]any{"url": "https://api.github.com", "token": "t", "extra": 1}}, "INVALID_FIELD", "extra"},
			{map[string]any{"forge": "https://api.github.com"}, "INVALID_FIELD", "forge"},
		} {
			var out apiError
			if code := e.do("PATCH", "/api/v1/projects/app", tc.body, &out); code != http.StatusBadRequest || out.Code != tc.code || !strings.Contains(out.Message, tc.msg) {
				t.Errorf("PATCH %v: %d %+v, want 400 %s naming %s", tc.body, code, out, tc.code, tc.msg)
			}
		}
		if after := get(); jsonString(t, after) != jsonString(t, before) {
			t.Errorf("refused PATCHes changed the project: %+v, was %+v", after, before)
		}
		if server.TakeRescanSchedule(e.srv, created.ID) {
			t.Error("a refused PATCH scheduled rescans")
		}
		var out apiError
		if code := e.do("PATCH", "/api/v1/projects/nope", map[string]any{"schedule": ""}, &out); code != http.StatusNotFound {
			t.Errorf("PATCH an unknown project: %d %+v", code, out)
		}

		// forge: null removes the forge; then a file:// repo is fine.
		p = projectJSON{}
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"forge": nil, "repo_url": "file:///srv/git/app", "schedule": ""}, &p); code != 200 || p.Forge != nil || p.RepoURL != "file:///srv/git/app" || p.Schedule != "" {
			t.Errorf("PATCH forge null: %d %+v", code, p)
		}
		if server.TakeRescanSchedule(e.srv, created.ID) {
			t.Error("schedule \"\" left a periodic rescan")
		}
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{}, &p); code != 200 || p.RepoURL != "file:///srv/git/app" {
			t.Errorf("an empty PATCH: %d %+v", code, p)
		}
		// Without a forge, a repo_url is still checked: only the schemes
		// the message names.
		for _, bad := range []string{"ftp://x/y", "HTTP://github.com/acme/app", "fd::3", "ext::sh -c touch% /tmp/pwned"} {
			var out apiError
			if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"repo_url": bad}, &out); code != http.StatusBadRequest || !strings.Contains(out.Message, "repo_url") {
				t.Errorf("PATCH repo_url %q: %d %+v, want 400", bad, code, out)
			}
			if code := e.do("POST", "/api/v1/projects", map[string]any{"name": "x", "repo_url": bad, "webhook_secret": webhookSecret}, &out); code != http.StatusBadRequest {
				t.Errorf("create with repo_url %q: %d %+v, want 400", bad, code, out)
			}
		}
	})
}

// TestDeleteProject: refused while a scan is queued or running; then the
// project goes with everything stored with it, its name is free, and its
// rescans are unscheduled.
func TestDeleteProject(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e, _ := newEnv(t, dialect, envConfig{})
		e.createProject("app", "https://github.com/acme/app")
		e.createProject("other", "https://github.com/acme/other")
		id := mustProject(t, e.db, "app")
		if code := e.do("POST", "/api/v1/waivers", map[string]any{"project": "app", "rule": "G404", "owner": "sec", "reason": "r",
			"expires": time.Now().AddDate(0, 1, 0).Format("2006-01-02")}, nil); code != http.StatusCreated {
			t.Fatalf("create waiver: %d", code)
		}
		var sc struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": strings.Repeat("a", 40)}, &sc); code != http.StatusAccepted {
			t.Fatalf("POST scan: %d", code)
		}

		var out apiError
		if code := e.do("DELETE", "/api/v1/projects/app", nil, &out); code != http.StatusConflict || out.Code != "CONFLICT" || !strings.Contains(out.Message, "queued or running") {
			t.Errorf("DELETE with a queued scan: %d %+v, want 409 CONFLICT", code, out)
		}
		if _, err := e.db.MarkRunning(ctx, sc.ID); err != nil {
			t.Fatal(err)
		}
		if code := e.do("DELETE", "/api/v1/projects/app", nil, &out); code != http.StatusConflict {
			t.Errorf("DELETE with a running scan: %d %+v, want 409", code, out)
		}
		if code := e.do("GET", "/api/v1/projects/app", nil, nil); code != 200 {
			t.Fatalf("a refused DELETE deleted the project: %d", code)
		}
		if _, err := e.db.MarkFailed(ctx, sc.ID, "boom"); err != nil {
			t.Fatal(err)
		}

		if code := e.do("DELETE", "/api/v1/projects/app", nil, nil); code != http.StatusNoContent {
			t.Fatalf("DELETE: %d, want 204", code)
		}
		if code := e.do("GET", "/api/v1/projects/app", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET a deleted project: %d, want 404", code)
		}
		if code := e.do("DELETE", "/api/v1/projects/app", nil, nil); code != http.StatusNotFound {
			t.Errorf("DELETE again: %d, want 404", code)
		}
		if server.TakeRescanSchedule(e.srv, id) {
			t.Error("the deleted project's rescans are still scheduled")
		}
		if !server.TakeRescanSchedule(e.srv, mustProject(t, e.db, "other")) {
			t.Error("the other project's rescans were unscheduled")
		}
		for _, table := range []string{"policies", "project_forges", "waivers", "waiver_versions", "findings", "recorded_scans", "scans"} {
			var n int
			q := "SELECT count(*) FROM " + table + " WHERE project_id = ?"
			if dialect == store.Postgres {
				q = strings.Replace(q, "?", "$1", 1)
			}
			if err := e.db.SQL().QueryRow(q, id).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s: %d rows of the deleted project left (%v)", table, n, err)
			}
		}
		// A push to it is refused like one to a project that never was.
		req, _ := http.NewRequest("POST", e.ts.URL+"/hooks/github/app", strings.NewReader(`{}`))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", sign(webhookSecret, []byte(`{}`)))
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("push to a deleted project: %d, want 401", resp.StatusCode)
		}
		// The name is free again, and the other project is untouched.
		e.createProject("app", "https://github.com/acme/app")
		var l struct{ Projects []projectJSON }
		if code := e.do("GET", "/api/v1/projects", nil, &l); code != 200 || len(l.Projects) != 2 {
			t.Errorf("projects after delete and create: %d %+v", code, l)
		}
		// Without projects:admin, no delete.
		reader := e.clientWith("scans:read")
		if code := e.doWith(reader, "DELETE", "/api/v1/projects/other", nil, nil); code != http.StatusForbidden {
			t.Errorf("DELETE with scans:read: %d, want 403", code)
		}
	})
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// TestPolicyVersions: a new policy version through the API changes the
// gate's answer at once; the same policy again makes no version; an
// invalid one is refused naming its field and changes nothing.
func TestPolicyVersions(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r, _, weak := repo(t)
		e.createProject("app", "file://"+r.Dir) // policy v1: fail on high
		var sc struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": weak}, &sc); code != http.StatusAccepted {
			t.Fatalf("POST scan: %d", code)
		}
		if s := e.waitScan(sc.ID); s.Status != "succeeded" {
			t.Fatalf("scan: %s %s", s.Status, s.Error)
		}
		gate := func() string {
			t.Helper()
			var g gateJSON
			if code := e.do("GET", "/api/v1/gate?project=app&commit="+weak, nil, &g); code != 200 {
				t.Fatalf("gate: %d", code)
			}
			return g.Decision
		}
		if d := gate(); d != "fail" {
			t.Fatalf("gate under policy v1: %s, want fail", d)
		}
		gate() // cached now

		type policyJSON struct {
			Project string
			Version int
			Policy  string
		}
		var pol policyJSON
		if code := e.do("GET", "/api/v1/projects/app/policy", nil, &pol); code != 200 || pol.Version != 1 || !strings.Contains(pol.Policy, "severity: high") {
			t.Fatalf("GET policy: %d %+v", code, pol)
		}
		v2 := "fail_on:\n  severity: high\nrules:\n  exclude: [G404]\n"
		if code := e.do("PUT", "/api/v1/projects/app/policy", map[string]any{"policy": v2}, &pol); code != http.StatusCreated || pol.Version != 2 || pol.Project != "app" {
			t.Fatalf("PUT policy: %d %+v, want 201 version 2", code, pol)
		}
		if d := gate(); d != "pass" {
			t.Errorf("gate right after policy v2 (G404 excluded): %s, want pass", d)
		}
		if code := e.do("PUT", "/api/v1/projects/app/policy", map[string]any{"policy": v2}, &pol); code != http.StatusOK || pol.Version != 2 {
			t.Errorf("PUT the same policy: %d %+v, want 200 version 2", code, pol)
		}

		// Invalid policies: 400 naming the field; nothing changes.
		for _, bad := range []struct{ body, field string }{
			{"fail_on:\n  severity: extreme\n", "fail_on.severity"},
			{"rules:\n  exclude: G404\n", "rules.exclude"},
			{"waivers:\n  - rule: G404\n    reason: r\n    expires: 2030-01-01\n", "owner"},
			{"nonsense: 1\n", "nonsense"},
			{"fail_on: [\n", "policy"},
		} {
			var out apiError
			if code := e.do("PUT", "/api/v1/projects/app/policy", map[string]any{"policy": bad.body}, &out); code != http.StatusBadRequest || out.Code != "INVALID_FIELD" || !strings.Contains(out.Message, bad.field) {
				t.Errorf("PUT %q: %d %+v, want 400 naming %s", bad.body, code, out, bad.field)
			}
		}
		var out apiError
		if code := e.do("PUT", "/api/v1/projects/app/policy", map[string]any{"policy": v2, "version": 7}, &out); code != http.StatusBadRequest || out.Code != "UNKNOWN_FIELD" {
			t.Errorf("PUT with an unknown field: %d %+v", code, out)
		}
		if code := e.do("PUT", "/api/v1/projects/nope/policy", map[string]any{"policy": v2}, &out); code != http.StatusNotFound {
			t.Errorf("PUT policy of an unknown project: %d", code)
		}
		if code := e.do("GET", "/api/v1/projects/app/policy", nil, &pol); code != 200 || pol.Version != 2 || pol.Policy != v2 {
			t.Errorf("GET policy after refused PUTs: %d %+v", code, pol)
		}
		if d := gate(); d != "pass" {
			t.Errorf("gate after refused PUTs: %s, want pass", d)
		}

		// The policy file itself, as YAML: back to failing.
		req, _ := http.NewRequest("PUT", e.ts.URL+"/api/v1/projects/app/policy", strings.NewReader("fail_on:\n  severity: medium\n"))
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := e.api.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/api/v1/projects/app/policy?version=3" {
			t.Errorf("PUT YAML: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if d := gate(); d != "fail" {
			t.Errorf("gate after policy v3: %s, want fail", d)
		}
		if code := e.do("GET", "/api/v1/projects/app/policy?version=1", nil, &pol); code != 200 || pol.Version != 1 {
			t.Errorf("GET policy version 1: %d %+v", code, pol)
		}
		for q, want := range map[string]int{"?version=9": 404, "?version=0": 400, "?version=x": 400} {
			if code := e.do("GET", "/api/v1/projects/app/policy"+q, nil, nil); code != want {
				t.Errorf("GET policy%s: %d, want %d", q, code, want)
			}
		}
		var p projectJSON
		if code := e.do("GET", "/api/v1/projects/app", nil, &p); code != 200 || p.PolicyVersion != 3 {
			t.Errorf("the project's policy_version: %d %+v, want 3", code, p)
		}
		e.createProject("bare", "https://github.com/acme/bare")
		e.do("PUT", "/api/v1/projects/bare/policy", map[string]any{"policy": ""}, nil)
		if code := e.do("GET", "/api/v1/projects/other/policy", nil, &out); code != http.StatusNotFound {
			t.Errorf("GET policy of an unknown project: %d", code)
		}
		reader := e.clientWith("scans:read")
		if code := e.doWith(reader, "PUT", "/api/v1/projects/app/policy", map[string]any{"policy": ""}, nil); code != http.StatusForbidden {
			t.Errorf("PUT policy with scans:read: %d, want 403", code)
		}
		if code := e.doWith(reader, "GET", "/api/v1/projects/app/policy", nil, nil); code != http.StatusOK {
			t.Errorf("GET policy with scans:read: %d, want 200", code)
		}
	})
}

// TestWebhookSecretRotation: a signed push works before a rotation, with
// the new secret after it and, through the grace period, with the old
// one; a rotation without grace ends the old secret at once.
func TestWebhookSecretRotation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e, _ := newEnv(t, dialect, envConfig{})
		e.createProject("app", "https://github.com/acme/app")
		n := 0
		push := func(secret string) int {
			t.Helper()
			n++
			body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":"%040x","repository":{"clone_url":"https://github.com/acme/app"},"commits":[{"id":"%040x"}]}`, n, n))
			req, _ := http.NewRequest("POST", e.ts.URL+"/hooks/github/app", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-Hub-Signature-256", sign(secret, body))
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		rotate := func(body any) (server.RotatedSecret, http.Header) {
			t.Helper()
			var rd io.Reader = http.NoBody
			if body != nil {
				rd = jsonBody(t, body)
			}
			req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/projects/app/webhook-secret", rd)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "same-key")
			resp, err := e.api.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out server.RotatedSecret
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || len(out.WebhookSecret) < 16 {
				t.Fatalf("rotate: %d %s", resp.StatusCode, b)
			}
			return out, resp.Header
		}

		if code := push(webhookSecret); code != http.StatusAccepted {
			t.Fatalf("push before rotation: %d", code)
		}
		r1, h := rotate(nil)
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("rotation answered with Cache-Control %q, want no-store", h.Get("Cache-Control"))
		}
		if r1.PreviousValidUntil == nil || r1.PreviousValidUntil.Before(time.Now().Add(23*time.Hour)) || r1.PreviousValidUntil.After(time.Now().Add(25*time.Hour)) {
			t.Errorf("previous_valid_until %v, want in 24h", r1.PreviousValidUntil)
		}
		if code := push(r1.WebhookSecret); code != http.StatusAccepted {
			t.Errorf("push with the new secret: %d", code)
		}
		if code := push(webhookSecret); code != http.StatusAccepted {
			t.Errorf("push with the old secret in its grace period: %d", code)
		}
		if code := push("wrong-secret-0123456789"); code != http.StatusUnauthorized {
			t.Errorf("push with a wrong secret: %d", code)
		}

		// The same Idempotency-Key does not replay a secret: a rotation
		// is never stored to be replayed.
		r2, _ := rotate(map[string]any{"grace_seconds": 3600})
		if r2.WebhookSecret == r1.WebhookSecret {
			t.Fatal("a second rotation answered the first secret")
		}
		if code := push(webhookSecret); code != http.StatusUnauthorized {
			t.Errorf("push with the secret two rotations ago: %d, want 401", code)
		}
		if code := push(r1.WebhookSecret); code != http.StatusAccepted {
			t.Errorf("push with the previous secret: %d", code)
		}
		var stored int
		q := "SELECT count(*) FROM idempotency_keys"
		if err := e.db.SQL().QueryRow(q).Scan(&stored); err != nil || stored != 0 {
			t.Errorf("%d idempotency records after rotations (%v)", stored, err)
		}
		p, err := e.db.GetProjectByName(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range []string{p.WebhookSecret, p.PreviousWebhookSecret} {
			if !strings.HasPrefix(col, "aesgcm1:") || strings.Contains(col, r1.WebhookSecret) || strings.Contains(col, r2.WebhookSecret) {
				t.Errorf("a webhook secret is not sealed at rest: %q", col)
			}
		}

		// A grace period that has ended: the previous secret is refused.
		if _, err := e.db.SQL().Exec(`UPDATE projects SET previous_secret_until = '2000-01-01T00:00:00.000000Z' WHERE name = 'app'`); err != nil {
			t.Fatal(err)
		}
		if code := push(r1.WebhookSecret); code != http.StatusUnauthorized {
			t.Errorf("push with the previous secret after its grace period: %d, want 401", code)
		}
		if code := push(r2.WebhookSecret); code != http.StatusAccepted {
			t.Errorf("push with the current secret: %d", code)
		}

		// No grace: the old secret stops at once.
		r3, _ := rotate(map[string]any{"grace_seconds": 0})
		if r3.PreviousValidUntil != nil {
			t.Errorf("grace 0: previous_valid_until %v", r3.PreviousValidUntil)
		}
		if code := push(r2.WebhookSecret); code != http.StatusUnauthorized {
			t.Errorf("push with the replaced secret after a rotation without grace: %d, want 401", code)
		}
		if code := push(r3.WebhookSecret); code != http.StatusAccepted {
			t.Errorf("push with the newest secret: %d", code)
		}

		for _, bad := range []any{map[string]any{"grace_seconds": -1}, map[string]any{"grace_seconds": 604801}, map[string]any{"grace": 1}} {
			var out apiError
			if code := e.do("POST", "/api/v1/projects/app/webhook-secret", bad, &out); code != http.StatusBadRequest {
				t.Errorf("rotate with %v: %d %+v, want 400", bad, code, out)
			}
		}
		if code := push(r3.WebhookSecret); code != http.StatusAccepted {
			t.Errorf("refused rotations changed the secret: push %d", code)
		}
		if code := e.do("POST", "/api/v1/projects/nope/webhook-secret", map[string]any{}, nil); code != http.StatusNotFound {
			t.Errorf("rotate an unknown project: %d", code)
		}
		reader := e.clientWith("scans:read")
		if code := e.doWith(reader, "POST", "/api/v1/projects/app/webhook-secret", map[string]any{}, nil); code != http.StatusForbidden {
			t.Errorf("rotate with scans:read: %d, want 403", code)
		}
	})
}

// TestWaiverPages: the waiver list pages like the others.
func TestWaiverPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		e.createProject("app", "https://github.com/acme/app")
		var want []string
		for i := range 5 {
			var w struct{ ID string }
			if code := e.do("POST", "/api/v1/waivers", map[string]any{"project": "app", "rule": fmt.Sprintf("G%d", 100+i), "owner": "sec", "reason": "r",
				"expires": time.Now().AddDate(0, 1, 0).Format("2006-01-02")}, &w); code != http.StatusCreated {
				t.Fatalf("create waiver: %d", code)
			}
			want = append(want, w.ID)
		}
		var got []string
		path := "/api/v1/waivers?project=app&limit=2"
		for range 10 {
			var page struct {
				Waivers    []struct{ ID string }
				NextCursor string `json:"next_cursor"`
			}
			if code := e.do("GET", path, nil, &page); code != 200 || len(page.Waivers) > 2 {
				t.Fatalf("GET %s: %d %+v", path, code, page)
			}
			for _, w := range page.Waivers {
				got = append(got, w.ID)
			}
			if page.NextCursor == "" {
				break
			}
			path = "/api/v1/waivers?project=app&limit=2&cursor=" + page.NextCursor
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("paged waivers %v, want %v", got, want)
		}
		for _, bad := range []string{"&limit=0", "&limit=1001", "&cursor=bm9wZQ", "&limit=x"} {
			if code := e.do("GET", "/api/v1/waivers?project=app"+bad, nil, nil); code != http.StatusBadRequest {
				t.Errorf("GET waivers%s: %d, want 400", bad, code)
			}
		}
	})
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
