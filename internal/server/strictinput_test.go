package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// postRaw sends body as it is (not re-encoded) with the authenticated
// client and returns the status and the error code of the answer.
func (e *env) postRaw(path, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.api.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Code, Message string }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 400 {
		e.t.Logf("POST %s → %d %s %s", path, resp.StatusCode, out.Code, out.Message)
	}
	return resp.StatusCode, out.Code
}

// TestIdentifierFields: one rule (httpx.CheckIdentifier) for every field
// that names something, through the mounted server: control characters,
// newlines, separators and invisible characters are refused, and nothing
// is stored.
func TestIdentifierFields(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		r, clean, _ := repo(t)
		e.createProject("ok", "file://"+r.Dir)
		good := map[string]any{"name": "p1", "repo_url": "file://" + r.Dir, "default_branch": "main", "webhook_secret": webhookSecret, "schedule": "0 3 * * *"}
		with := func(base map[string]any, k string, v any) map[string]any {
			m := map[string]any{}
			for k, v := range base {
				m[k] = v
			}
			m[k] = v
			return m
		}
		for _, bad := range []string{"\x00", "\n", "\r", "\t", "\u0085", "\u2028", "\u202e", "\u200b", "\x7f"} {
			for _, field := range []string{"name", "repo_url", "default_branch", "schedule"} {
				v := good[field].(string)
				v = v[:len(v)/2] + bad + v[len(v)/2:]
				var out struct{ Code string }
				if code := e.do("POST", "/api/v1/projects", with(good, field, v), &out); code != 400 || out.Code != "INVALID_FIELD" {
					t.Errorf("project %s with %q: %d %s, want 400 INVALID_FIELD", field, bad, code, out.Code)
				}
			}
			if code := e.do("POST", "/api/v1/projects", with(good, "forge", map[string]any{"url": "https://api.github.com/x" + bad + "y", "token": "t0ken"}), nil); code != 400 {
				t.Errorf("forge.url with %q: %d, want 400", bad, code)
			}
			scan := map[string]any{"project": "ok", "commit": clean, "branch": "main" + bad + "x"}
			if code := e.do("POST", "/api/v1/scans", scan, nil); code != 400 {
				t.Errorf("scan branch with %q: %d, want 400", bad, code)
			}
			if code := e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme" + bad + "Corp"}, nil); code != 400 {
				t.Errorf("tenant name with %q: %d, want 400", bad, code)
			}
			if code := e.do("POST", "/api/v1/products", map[string]any{"name": "Prod" + bad + "uct"}, nil); code != 400 {
				t.Errorf("product name with %q: %d, want 400", bad, code)
			}
			waiver := map[string]any{"project": "ok", "rule": "G404", "owner": "alice", "reason": "accepted risk\nsee ticket", "expires": "2999-01-01"}
			for _, field := range []string{"owner", "path"} {
				if code := e.do("POST", "/api/v1/waivers", with(waiver, field, "a"+bad+"b"), nil); code != 400 {
					t.Errorf("waiver %s with %q: %d, want 400", field, bad, code)
				}
			}
			act, _ := json.Marshal(map[string]any{"activation_code": "AAAA-BBBB", "seat_id": "seat" + bad + "1"})
			resp, err := e.ts.Client().Post(e.ts.URL+"/api/v1/activate", "application/json", bytes.NewReader(act))
			if err != nil {
				t.Fatal(err)
			}
			var ae struct{ Code string }
			json.NewDecoder(resp.Body).Decode(&ae)
			resp.Body.Close()
			if resp.StatusCode != 400 || ae.Code != "INVALID_REQUEST" {
				t.Errorf("activate seat_id with %q: %d %s, want 400 INVALID_REQUEST", bad, resp.StatusCode, ae.Code)
			}
		}
		// Free text keeps its newlines.
		waiver := map[string]any{"project": "ok", "rule": "G404", "owner": "alice", "reason": "accepted risk\nsee ticket", "expires": "2999-01-01"}
		if code := e.do("POST", "/api/v1/waivers", waiver, nil); code != 201 {
			t.Errorf("waiver with a two-line reason: %d, want 201", code)
		}
		var list struct{ Projects []struct{ Name string } }
		if code := e.do("GET", "/api/v1/projects", nil, &list); code != 200 || len(list.Projects) != 1 {
			t.Errorf("projects after refused creates: %d %+v, want only ok", code, list.Projects)
		}
	})
}

// TestStrictJSON: duplicate keys and keys in another case are refused by
// the API, the Licensing API and the admission webhook of the mounted
// server, where encoding/json would have taken one of them.
func TestStrictJSON(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{})
		r, _, _ := repo(t)
		url := "file://" + r.Dir
		for _, tc := range []struct{ body, code string }{
			{`{"name":"evil","name":"p1","repo_url":"` + url + `","webhook_secret":"` + webhookSecret + `"}`, "DUPLICATE_KEY"},
			{`{"Name":"p1","repo_url":"` + url + `","webhook_secret":"` + webhookSecret + `"}`, "UNKNOWN_FIELD"},
			{`{"name":"p1","repo_url":"` + url + `","REPO_URL":"file:///elsewhere","webhook_secret":"` + webhookSecret + `"}`, "UNKNOWN_FIELD"},
			{`{"name":"p1","repo_url":"` + url + `","webhook_secret":"` + webhookSecret + `","forge":{"url":"https://a.example","url":"https://b.example","token":"t"}}`, "DUPLICATE_KEY"},
		} {
			if code, c := e.postRaw("/api/v1/projects", tc.body); code != 400 || c != tc.code {
				t.Errorf("POST /api/v1/projects %s: %d %s, want 400 %s", tc.body, code, c, tc.code)
			}
		}
		if code, c := e.postRaw("/api/v1/tenants", `{"name":"a","name":"b"}`); code != 400 || c != "DUPLICATE_KEY" {
			t.Errorf("tenant with a duplicate name: %d %s, want 400 DUPLICATE_KEY", code, c)
		}
		var list struct{ Projects []struct{ Name string } }
		if code := e.do("GET", "/api/v1/projects", nil, &list); code != 200 || len(list.Projects) != 0 {
			t.Errorf("projects after refused creates: %d %+v, want none", code, list.Projects)
		}

		for _, body := range []string{
			`{"activation_code":"AAAA-BBBB","seat_id":"s1","seat_id":"s2"}`,
			`{"activation_code":"AAAA-BBBB","SEAT_ID":"s1"}`,
		} {
			resp, err := e.ts.Client().Post(e.ts.URL+"/api/v1/activate", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("activate %s: %d, want 400", body, resp.StatusCode)
			}
		}

		const head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",`
		for _, body := range []string{
			head + `"kind":{"kind":"Pod","kind":"ConfigMap"},"object":{"spec":{"containers":[{"image":"registry.invalid/x:1"}]}}}}`,
			head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"registry.invalid/x:1"}]}},"Object":null}}`,
		} {
			resp, err := e.ts.Client().Post(e.ts.URL+"/admission/v1/validate", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("admission %s: %d, want 400", body, resp.StatusCode)
			}
		}
	})
}
