package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestProjectsCommands runs `vigil projects` against `vigil serve`: every
// command, its --json (what the API answers for the same object), and
// its exit codes. The dialects run one after the other (not
// storetest.Run, which runs them in parallel): the commands read their
// credentials from the environment.
func TestProjectsCommands(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(string(dialect), func(t *testing.T) { testProjectsCommands(t, dialect) })
	}
}

// servedAPI is `vigil serve` on a fresh store, with its admin client's
// credentials in the environment.
type servedAPI struct {
	t      *testing.T
	base   string
	srv    []string     // the flags that name the server and trust it
	api    *http.Client // an authenticated client of the API
	secret string
}

// serveAPI runs `vigil serve` on the dialect, with extra flags, and sets
// VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET to its admin client's.
func serveAPI(t *testing.T, dialect store.Dialect, extra ...string) *servedAPI {
	t.Helper()
	storeArgs := append([]string{"--data", filepath.Join(t.TempDir(), "data")}, extra...)
	if dialect == store.Postgres {
		storeArgs = append(storeArgs, "--database", storetest.DSN(t, dialect))
	}
	base, banner := serveOn(t, storeArgs...)
	id, secret := field(banner, "client_id"), field(banner, "client_secret")
	fp := field(banner, "TLS certificate SHA-256 fingerprint")
	if id == "" || secret == "" || fp == "" {
		t.Fatalf("no admin client or fingerprint printed:\n%s", banner)
	}
	t.Setenv("VIGIL_CLIENT_ID", id)
	t.Setenv("VIGIL_CLIENT_SECRET", secret)
	t.Setenv("VIGIL_SERVER", "")
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: base + "/oauth2/token"}
	api := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, insecureClient()))
	return &servedAPI{t: t, base: base, srv: []string{"--server", base, "--fingerprint", fp}, api: api, secret: secret}
}

// with appends the server flags to a command's arguments.
func (s *servedAPI) with(args ...string) []string { return append(args, s.srv...) }

// do sends a request to the API with a JSON body (when not nil) and
// returns the status and the answer, as the API wrote it.
func (s *servedAPI) do(method, path string, body any) (int, string) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.api.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimRight(string(b), "\n") + "\n"
}

// get is the API's own answer for a path, to compare --json with.
func (s *servedAPI) get(path string) string {
	s.t.Helper()
	code, b := s.do("GET", path, nil)
	if code != 200 {
		s.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return b
}

func testProjectsCommands(t *testing.T, dialect store.Dialect) {
	{
		s := serveAPI(t, dialect)
		base, secret, with, apiGet := s.base, s.secret, s.with, s.get

		dir := t.TempDir()
		policy1 := filepath.Join(dir, "policy1.yaml")
		write(t, policy1, "fail_on:\n  severity: high\n")
		tokenFile := filepath.Join(dir, "token")
		write(t, tokenFile, "forge-t0ken\n")

		var p struct {
			ID, Name, Schedule string
			RepoURL            string `json:"repo_url"`
			DefaultBranch      string `json:"default_branch"`
			PolicyVersion      int    `json:"policy_version"`
			Forge              *struct{ URL string }
		}
		vigilJSON(t, &p, with("projects", "create", "app", "--repo", "https://github.com/acme/app", "--policy", policy1,
			"--forge-url", "https://api.github.com", "--forge-token-file", tokenFile, "--json")...)
		if p.Name != "app" || p.PolicyVersion != 1 || p.DefaultBranch != "main" || p.Forge == nil || p.Forge.URL != "https://api.github.com" {
			t.Fatalf("projects create: %+v", p)
		}
		code, out, _ := vigil(t, with("projects", "create", "other", "--repo", "https://github.com/acme/other")...)
		if code != 0 || !strings.Contains(out, "webhook secret: ") || !strings.Contains(out, "project other") {
			t.Errorf("projects create without a secret file: exit %d\n%s", code, out)
		}

		if got := vigilJSON(t, &p, with("projects", "get", "app", "--json")...); got != apiGet("/api/v1/projects/app") {
			t.Errorf("projects get --json printed\n%s\nthe API answers\n%s", got, apiGet("/api/v1/projects/app"))
		}
		var list struct {
			Projects   []struct{ Name string }
			NextCursor string `json:"next_cursor"`
		}
		if got := vigilJSON(t, &list, with("projects", "list", "--json")...); got != apiGet("/api/v1/projects") {
			t.Errorf("projects list --json printed\n%s\nthe API answers\n%s", got, apiGet("/api/v1/projects"))
		}
		if len(list.Projects) != 2 || list.Projects[0].Name != "app" {
			t.Errorf("projects list: %+v", list)
		}
		if code, out, _ := vigil(t, with("projects", "list")...); code != 0 || !strings.Contains(out, "other") || !strings.Contains(out, "v1") {
			t.Errorf("projects list: exit %d\n%s", code, out)
		}

		p.Forge = nil
		vigilJSON(t, &p, with("projects", "update", "app", "--schedule", "0 3 * * *", "--remove-forge", "--json")...)
		if p.Schedule != "0 3 * * *" || p.Forge != nil || p.RepoURL != "https://github.com/acme/app" {
			t.Errorf("projects update: %+v", p)
		}

		policy2 := filepath.Join(dir, "policy2.yaml")
		write(t, policy2, "fail_on:\n  severity: medium\n")
		var pv struct {
			Project string
			Version int
			Policy  string
		}
		vigilJSON(t, &pv, with("projects", "policy", "set", "app", policy2, "--json")...)
		if pv.Version != 2 || pv.Project != "app" {
			t.Errorf("policy set: %+v", pv)
		}
		if code, out, _ := vigil(t, with("projects", "policy", "get", "app")...); code != 0 || out != "fail_on:\n  severity: medium\n" {
			t.Errorf("policy get: exit %d %q", code, out)
		}
		if got := vigilJSON(t, &pv, with("projects", "policy", "get", "app", "--version", "1", "--json")...); got != apiGet("/api/v1/projects/app/policy?version=1") || pv.Version != 1 {
			t.Errorf("policy get --version 1 --json: %s", got)
		}

		var rot struct {
			WebhookSecret      string `json:"webhook_secret"`
			PreviousValidUntil string `json:"previous_valid_until"`
		}
		vigilJSON(t, &rot, with("projects", "rotate-secret", "app", "--grace", "1h", "--json")...)
		if len(rot.WebhookSecret) < 16 || rot.PreviousValidUntil == "" {
			t.Errorf("rotate-secret: %+v", rot)
		}
		if code, out, _ := vigil(t, with("projects", "rotate-secret", "app", "--grace", "0")...); code != 0 || !strings.Contains(out, "no longer works") {
			t.Errorf("rotate-secret --grace 0: exit %d\n%s", code, out)
		}

		// Bad input: exit 2, saying what is wrong.
		bad := filepath.Join(dir, "bad.yaml")
		write(t, bad, "fail_on:\n  severity: extreme\n")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"projects", "update", "app", "--repo", "ftp://x"}, "repo_url"},
			{[]string{"projects", "update", "app"}, "nothing to change"},
			{[]string{"projects", "update", "nope", "--schedule", ""}, "NOT_FOUND"},
			{[]string{"projects", "create", "app", "--repo", "https://github.com/acme/app"}, "CONFLICT"},
			{[]string{"projects", "create", "x"}, "--repo"},
			{[]string{"projects", "create", "x", "--repo", "https://github.com/acme/x", "--forge-url", "https://api.github.com"}, "--forge-token-file"},
			{[]string{"projects", "policy", "set", "app", bad}, "fail_on.severity"},
			{[]string{"projects", "policy", "set", "app", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
			{[]string{"projects", "rotate-secret", "app", "--grace", "-1s"}, "--grace"},
			{[]string{"projects", "get"}, "arg"},
		} {
			code, _, stderr := vigil(t, with(tc.args...)...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("vigil %s: exit %d %q; want %d saying %s", strings.Join(tc.args, " "), code, stderr, cli.ExitUsage, tc.want)
			}
		}
		if code, _, stderr := vigil(t, "projects", "list"); code != cli.ExitUsage || !strings.Contains(stderr, "--server") {
			t.Errorf("projects list without a server: exit %d %q", code, stderr)
		}
		if code, _, stderr := vigil(t, "projects", "list", "--server", base, "--fingerprint", strings.Repeat("AB:", 31)+"AB"); code != cli.ExitScanFailed || !strings.Contains(stderr, "fingerprint") {
			t.Errorf("projects list with a wrong fingerprint: exit %d %q, want 3", code, stderr)
		}
		t.Setenv("VIGIL_CLIENT_SECRET", "")
		if code, _, stderr := vigil(t, with("projects", "list")...); code != cli.ExitUsage || !strings.Contains(stderr, "VIGIL_CLIENT_SECRET") {
			t.Errorf("projects list without credentials: exit %d %q", code, stderr)
		}
		t.Setenv("VIGIL_CLIENT_SECRET", secret)

		if code, out, _ := vigil(t, with("projects", "delete", "app")...); code != 0 || !strings.Contains(out, "deleted project app") {
			t.Errorf("projects delete: exit %d %s", code, out)
		}
		if code, _, stderr := vigil(t, with("projects", "get", "app")...); code != cli.ExitUsage || !strings.Contains(stderr, "NOT_FOUND") {
			t.Errorf("projects get of a deleted project: exit %d %q", code, stderr)
		}
		var after struct{ Projects []json.RawMessage }
		vigilJSON(t, &after, with("projects", "list", "--json")...)
		if len(after.Projects) != 1 {
			t.Errorf("%d projects after the delete, want 1", len(after.Projects))
		}
	}
}
