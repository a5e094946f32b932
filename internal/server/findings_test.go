package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

type sightingJSON struct {
	Scan, Commit string
	At           time.Time
}

type findingJSON struct {
	ID          string
	Fingerprint string
	RuleID      string `json:"rule_id"`
	File        string
	State       string
	FirstSeen   sightingJSON  `json:"first_seen"`
	LastSeen    sightingJSON  `json:"last_seen"`
	FixedIn     *sightingJSON `json:"fixed_in"`
}

type findingsPage struct {
	Findings   []findingJSON
	NextCursor string `json:"next_cursor"`
}

type waiverJSON struct {
	ID, Project, Rule, Path, Owner, Reason, Expires string
	Active                                          bool
	CreatedBy                                       string `json:"created_by"`
}

type apiError struct{ Code, Message string }

// twoWeakFiles makes a module whose main.go and tools/gen.go use
// math/rand (gosec G404), then a commit that fixes main.go only.
func twoWeakFiles(t *testing.T) (r *gittest.Repo, weak, fix string) {
	r = gittest.New(t)
	weak = r.Commit("weak random twice", map[string]string{
		"go.mod":       goMod,
		"main.go":      "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Intn(3)) }\n",
		"tools/gen.go": "package tools\n\nimport \"math/rand\"\n\nfunc Gen() int { return rand.Intn(7) }\n",
	})
	fix = r.Commit("main: no weak random", map[string]string{
		"main.go": "package main\n\nfunc main() { println(3) }\n",
	})
	return r, weak, fix
}

// scanOn scans a commit recorded for the branch and waits for it.
func (e *env) scanOn(commit, branch string) string {
	e.t.Helper()
	var ref struct{ ID string }
	if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": commit, "branch": branch}, &ref); code != http.StatusAccepted {
		e.t.Fatalf("POST scan of %s: %d", commit, code)
	}
	if s := e.waitScan(ref.ID); s.Status != "succeeded" {
		e.t.Fatalf("scan of %s: %s (%s)", commit, s.Status, s.Error)
	}
	return ref.ID
}

func (e *env) gate(commit string) gateJSON {
	e.t.Helper()
	var g gateJSON
	if code := e.do("GET", "/api/v1/gate?project=app&commit="+commit, nil, &g); code != http.StatusOK {
		e.t.Fatalf("gate of %s: %d", commit, code)
	}
	return g
}

func (e *env) findings(query string) findingsPage {
	e.t.Helper()
	var p findingsPage
	if code := e.do("GET", "/api/v1/findings?project=app"+query, nil, &p); code != http.StatusOK {
		e.t.Fatalf("GET findings%s: %d", query, code)
	}
	return p
}

func hasCode(g gateJSON, code, inMessage string) bool {
	for _, r := range g.Reasons {
		if r.Code == code && strings.Contains(r.Message, inMessage) {
			return true
		}
	}
	return false
}

func TestFindingsAndWaivers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r, weak, fix := twoWeakFiles(t)
		e.createProject("app", "file://"+r.Dir)
		weakScan := e.scanOn(weak, "main")
		fixScan := e.scanOn(fix, "main")

		// Tracked across the two commits: main.go's finding is fixed in
		// the second, tools/gen.go's is still open.
		all := e.findings("")
		if len(all.Findings) != 2 || all.NextCursor != "" {
			t.Fatalf("findings: %+v, want two on one page", all)
		}
		byFile := map[string]findingJSON{}
		for _, f := range all.Findings {
			if f.RuleID != "G404" || f.Fingerprint == "" {
				t.Errorf("finding %+v, want G404 with a fingerprint", f)
			}
			byFile[f.File] = f
		}
		fixed, open := byFile["main.go"], byFile["tools/gen.go"]
		if fixed.State != "fixed" || fixed.FirstSeen.Commit != weak || fixed.LastSeen.Scan != weakScan ||
			fixed.FixedIn == nil || fixed.FixedIn.Commit != fix || fixed.FixedIn.Scan != fixScan {
			t.Errorf("main.go finding %+v (fixed in %+v), want fixed in %s, first and last seen in %s", fixed, fixed.FixedIn, fix, weak)
		}
		if open.State != "open" || open.FirstSeen.Commit != weak || open.LastSeen.Commit != fix || open.FixedIn != nil {
			t.Errorf("tools/gen.go finding %+v, want open, first seen in %s, last seen in %s", open, weak, fix)
		}

		// Pagination and the state filter.
		p1 := e.findings("&limit=1")
		if len(p1.Findings) != 1 || p1.NextCursor == "" {
			t.Fatalf("page 1: %+v", p1)
		}
		p2 := e.findings("&limit=1&cursor=" + p1.NextCursor)
		if len(p2.Findings) != 1 || p2.Findings[0].ID == p1.Findings[0].ID || p2.NextCursor != "" {
			t.Fatalf("page 2: %+v after %+v", p2, p1)
		}
		if p := e.findings("&state=fixed"); len(p.Findings) != 1 || p.Findings[0].File != "main.go" {
			t.Errorf("state=fixed: %+v", p)
		}

		// The fix commit fails the gate on tools/gen.go; a waiver of the
		// API for G404 under tools/ makes it pass, at once.
		if g := e.gate(fix); g.Decision != "fail" || !hasCode(g, "FINDING", "tools/gen.go") {
			t.Fatalf("gate before the waiver: %+v", g)
		}
		var w waiverJSON
		expires := time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)
		if code := e.do("POST", "/api/v1/waivers", map[string]any{"project": "app", "rule": "G404", "path": "tools/**",
			"owner": "sec@example.com", "reason": "test fixtures only", "expires": expires}, &w); code != http.StatusCreated {
			t.Fatalf("POST waiver: %d", code)
		}
		if w.ID == "" || !w.Active || w.Expires != expires || w.Project != "app" || w.CreatedBy == "" {
			t.Errorf("waiver %+v", w)
		}
		if g := e.gate(fix); g.Decision != "pass" {
			t.Errorf("gate with the waiver: %+v, want pass", g)
		}
		if p := e.findings("&state=waived"); len(p.Findings) != 1 || p.Findings[0].File != "tools/gen.go" {
			t.Errorf("state=waived: %+v", p)
		}
		if p := e.findings("&state=open"); len(p.Findings) != 0 {
			t.Errorf("state=open with the waiver: %+v", p)
		}
		var list struct{ Waivers []waiverJSON }
		if code := e.do("GET", "/api/v1/waivers?project=app", nil, &list); code != http.StatusOK || len(list.Waivers) != 1 || list.Waivers[0].ID != w.ID {
			t.Errorf("GET waivers: %d %+v", code, list)
		}

		// Deleting it fails the gate again.
		if code := e.do("DELETE", "/api/v1/waivers/"+w.ID, nil, nil); code != http.StatusNoContent {
			t.Fatalf("DELETE waiver: %d", code)
		}
		if code := e.do("DELETE", "/api/v1/waivers/"+w.ID, nil, nil); code != http.StatusNotFound {
			t.Errorf("DELETE again: %d, want 404", code)
		}
		if g := e.gate(fix); g.Decision != "fail" {
			t.Errorf("gate after the delete: %+v, want fail", g)
		}

		// A waiver that has expired (the API refuses to make one, so it is
		// stored directly) does not pass the gate, and the gate says so.
		old, err := e.db.CreateWaiver(context.Background(), ci.ProjectWaiver{ProjectID: mustProject(t, e.db, "app"), Rule: "G404",
			Owner: "sec@example.com", Reason: "was temporary", Expires: time.Now().UTC().AddDate(0, 0, -1)})
		if err != nil {
			t.Fatal(err)
		}
		if g := e.gate(fix); g.Decision != "fail" || !hasCode(g, "WAIVER_EXPIRED", "waiver "+old.ID+" for rule G404") {
			t.Errorf("gate with an expired waiver: %+v, want fail naming waiver %s as expired", g, old.ID)
		}
		// The scan's own gate agrees with the gate endpoint.
		var sc scanJSON
		if code := e.do("GET", "/api/v1/scans/"+fixScan, nil, &sc); code != http.StatusOK || sc.Gate.Decision != "fail" {
			t.Errorf("GET scan: %d gate %+v", code, sc.Gate)
		}
	})
}

func TestWaiverValidationAndScopes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r, _, _ := repo(t)
		e.createProject("app", "file://"+r.Dir)
		tomorrow := time.Now().UTC().AddDate(0, 0, 1)
		valid := func() map[string]any {
			return map[string]any{"project": "app", "rule": "G404", "owner": "sec@example.com", "reason": "why",
				"expires": tomorrow.Format(time.RFC3339)}
		}
		for _, c := range []struct {
			name      string
			change    func(map[string]any)
			wantCode  int
			wantField string
		}{
			{"no owner", func(m map[string]any) { delete(m, "owner") }, 400, "owner"},
			{"no reason", func(m map[string]any) { m["reason"] = "  " }, 400, "reason"},
			{"no expiry", func(m map[string]any) { delete(m, "expires") }, 400, "expires"},
			{"expired", func(m map[string]any) { m["expires"] = "2020-01-01" }, 400, "expires"},
			{"bad expiry", func(m map[string]any) { m["expires"] = "next week" }, 400, "expires"},
			{"blanket", func(m map[string]any) { delete(m, "rule") }, 400, "rule or fingerprint"},
			{"bad glob", func(m map[string]any) { m["path"] = "cmd/[" }, 400, "path"},
			{"bad rule", func(m map[string]any) { m["rule"] = "G404; DROP" }, 400, "rule"},
			{"long owner", func(m map[string]any) { m["owner"] = strings.Repeat("o", 201) }, 400, "owner"},
			{"long reason", func(m map[string]any) { m["reason"] = strings.Repeat("r", 2001) }, 400, "reason"},
			{"unknown field", func(m map[string]any) { m["scope"] = "all" }, 400, "scope"},
			{"no project", func(m map[string]any) { delete(m, "project") }, 400, "project"},
			{"unknown project", func(m map[string]any) { m["project"] = "nope" }, 404, "nope"},
		} {
			body := valid()
			c.change(body)
			var got apiError
			if code := e.do("POST", "/api/v1/waivers", body, &got); code != c.wantCode || !strings.Contains(got.Message, c.wantField) {
				t.Errorf("%s: %d %+v, want %d naming %q", c.name, code, got, c.wantCode, c.wantField)
			}
		}
		// An RFC 3339 expiry counts as its UTC date.
		var w waiverJSON
		if code := e.do("POST", "/api/v1/waivers", valid(), &w); code != http.StatusCreated || w.Expires != tomorrow.Format(time.DateOnly) {
			t.Errorf("valid waiver: %d %+v", code, w)
		}
		var bad apiError
		if code := e.do("GET", "/api/v1/findings?project=app&state=closed", nil, &bad); code != 400 || !strings.Contains(bad.Message, "state") {
			t.Errorf("bad state: %d %+v", code, bad)
		}
		if code := e.do("GET", "/api/v1/findings?project=app&limit=0", nil, &bad); code != 400 || !strings.Contains(bad.Message, "limit") {
			t.Errorf("bad limit: %d %+v", code, bad)
		}
		if code := e.do("GET", "/api/v1/findings", nil, &bad); code != 400 || !strings.Contains(bad.Message, "project") {
			t.Errorf("no project: %d %+v", code, bad)
		}

		// Scopes: scans:read reads findings and waivers but cannot make or
		// delete a waiver; gate:read reads neither; no token is 401.
		client := func(scopes ...string) *http.Client {
			id, secret, err := e.srv.OAuth().CreateClient(context.Background(), strings.Join(scopes, "+"), scopes)
			if err != nil {
				t.Fatal(err)
			}
			cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
			return cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, e.ts.Client()))
		}
		reader, gater := client("scans:read"), client("gate:read")
		for _, c := range []struct {
			c            *http.Client
			method, path string
			want         int
		}{
			{reader, "GET", "/api/v1/findings?project=app", 200},
			{reader, "GET", "/api/v1/waivers?project=app", 200},
			{reader, "GET", "/api/v1/waivers/" + w.ID, 200},
			{reader, "POST", "/api/v1/waivers", 403},
			{reader, "DELETE", "/api/v1/waivers/" + w.ID, 403},
			{gater, "GET", "/api/v1/findings?project=app", 403},
			{gater, "GET", "/api/v1/waivers?project=app", 403},
			{e.ts.Client(), "GET", "/api/v1/findings?project=app", 401},
			{e.ts.Client(), "DELETE", "/api/v1/waivers/" + w.ID, 401},
		} {
			var body any
			if c.method == "POST" {
				body = valid()
			}
			if code := e.doWith(c.c, c.method, c.path, body, nil); code != c.want {
				t.Errorf("%s %s: %d, want %d", c.method, c.path, code, c.want)
			}
		}
	})
}

// TestGateBaselineAndInvalidation checks that a cached gate decision
// follows what it depends on: the default branch's baseline, the policy
// version, and a gate summary missing from the store (read back from the
// result blob).
func TestGateBaselineAndInvalidation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ctx := context.Background()
		r := gittest.New(t)
		base := r.Commit("weak tools", map[string]string{
			"go.mod":       goMod,
			"main.go":      "package main\n\nfunc main() {}\n",
			"tools/gen.go": "package tools\n\nimport \"math/rand\"\n\nfunc Gen() int { return rand.Intn(7) }\n",
		})
		r.Git("checkout", "-q", "-b", "feature")
		change := r.Commit("weak cmd", map[string]string{
			"cmd/x/x.go": "package x\n\nimport \"math/rand\"\n\nfunc X() int { return rand.Intn(5) }\n",
		})
		r.Git("checkout", "-q", "-b", "docs", base)
		docs := r.Commit("docs", map[string]string{"README": "hello\n"})
		r.Git("checkout", "-q", "main")
		e.createProject("app", "file://"+r.Dir)

		baseScan := e.scanOn(base, "main")
		e.scanOn(change, "feature")
		e.scanOn(docs, "docs")
		if g := e.gate(base); g.Decision != "fail" {
			t.Errorf("gate of main: %+v, want fail", g)
		}
		// Change gates fail only on what the change brought.
		g := e.gate(change)
		if g.Decision != "fail" || !hasCode(g, "FINDING", "cmd/x/x.go") || hasCode(g, "FINDING", "tools/gen.go") {
			t.Errorf("gate of the change: %+v, want fail on cmd/x/x.go only", g)
		}
		if g := e.gate(docs); g.Decision != "pass" {
			t.Errorf("gate of the docs change: %+v, want pass (nothing new)", g)
		}

		// Merged: main's newest scan has cmd/x/x.go, so the feature commit
		// brings nothing new any more.
		r.Git("merge", "-q", "--ff-only", "feature")
		merged := r.Commit("merge", map[string]string{"CHANGELOG": "x\n"})
		e.scanOn(merged, "main")
		if g := e.gate(change); g.Decision != "pass" {
			t.Errorf("gate of the change after the merge: %+v, want pass", g)
		}

		// A new policy version changes the decision of a cached gate.
		pid := mustProject(t, e.db, "app")
		if _, err := e.db.AddPolicy(ctx, pid, "rules:\n  exclude: [G404]\n"); err != nil {
			t.Fatal(err)
		}
		if g := e.gate(base); g.Decision != "pass" {
			t.Errorf("gate of main under a policy excluding G404: %+v, want pass", g)
		}

		// A scan without a stored summary (one from before summaries)
		// is judged from its result blob, and gets its summary back.
		q := "DELETE FROM gate_summaries WHERE scan_id = ?"
		if dialect == store.Postgres {
			q = "DELETE FROM gate_summaries WHERE scan_id = $1"
		}
		if _, err := e.db.SQL().ExecContext(ctx, q, baseScan); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.AddPolicy(ctx, pid, "fail_on:\n  severity: high\n"); err != nil {
			t.Fatal(err)
		}
		if g := e.gate(base); g.Decision != "fail" || !hasCode(g, "FINDING", "tools/gen.go") {
			t.Errorf("gate of main from its result blob: %+v, want fail on tools/gen.go", g)
		}
		if _, err := e.db.GetGateSummary(ctx, baseScan); err != nil {
			t.Errorf("summary not stored again: %v", err)
		}
	})
}
