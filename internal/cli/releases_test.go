package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestReleasesCommands runs `vigil projects update --product` and `vigil
// releases` against `vigil serve` scanning a real repository: --json is
// what the API answers, refusals are exit 2 saying why. The dialects run
// one after the other: the commands read their credentials from the
// environment.
func TestReleasesCommands(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(string(dialect), func(t *testing.T) { testReleasesCommands(t, dialect) })
	}
}

type releaseOut struct {
	ID, Version, Status string
	Items               []struct {
		Project, Commit string
		ScanStatus      string `json:"scan_status"`
	}
}

func testReleasesCommands(t *testing.T, dialect store.Dialect) {
	s := serveAPI(t, dialect, "--outbound-schemes", "https,file")
	const product = "com.example.app"
	if code, b := s.do("POST", "/api/v1/products", map[string]any{"id": product, "name": "App"}); code != http.StatusCreated {
		t.Fatalf("create product: %d %s", code, b)
	}
	r := gittest.New(t)
	clean := r.Commit("clean", map[string]string{"go.mod": "module example.com/app\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() {}\n"})
	next := r.Commit("next", map[string]string{"README": "hi\n"})
	if code, _, _ := vigil(t, s.with("projects", "create", "app", "--repo", "file://"+r.Dir)...); code != 0 {
		t.Fatalf("projects create: exit %d", code)
	}

	// Products and production, through projects update.
	var p struct {
		Products   []string
		Production bool
	}
	vigilJSON(t, &p, s.with("projects", "update", "app", "--product", product, "--production", "--json")...)
	if len(p.Products) != 1 || p.Products[0] != product || !p.Production {
		t.Errorf("projects update --product --production: %+v", p)
	}
	if code, out, _ := vigil(t, s.with("projects", "get", "app")...); code != 0 || !strings.Contains(out, "products:       "+product) || !strings.Contains(out, "production:") {
		t.Errorf("projects get: exit %d\n%s", code, out)
	}
	vigilJSON(t, &p, s.with("projects", "update", "app", "--product", "", "--production=false", "--json")...)
	if len(p.Products) != 0 || p.Production {
		t.Errorf("projects update --product '' --production=false: %+v", p)
	}
	vigilJSON(t, &p, s.with("projects", "update", "app", "--product", product, "--production", "--json")...)

	// Scan the clean commit, then make releases of it.
	code, b := s.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean})
	var sc struct{ ID, Status, Error string }
	if err := json.Unmarshal([]byte(b), &sc); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST scan: %d %s", code, b)
	}
	for deadline := time.Now().Add(5 * time.Minute); sc.Status != "succeeded"; time.Sleep(200 * time.Millisecond) {
		if sc.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("scan: %+v", sc)
		}
		json.Unmarshal([]byte(s.get("/api/v1/scans/"+sc.ID)), &sc)
	}

	var rel releaseOut
	vigilJSON(t, &rel, s.with("releases", "create", "--product", product, "--version", "1.0.0", "--json")...)
	if rel.Status != "ready" || len(rel.Items) != 1 || rel.Items[0].Project != "app" || rel.Items[0].Commit != clean {
		t.Errorf("releases create from the production projects: %+v", rel)
	}
	if got := vigilJSON(t, &rel, s.with("releases", "show", rel.ID, "--json")...); got != s.get("/api/v1/releases/"+rel.ID) {
		t.Errorf("releases show --json printed\n%s\nthe API answers\n%s", got, s.get("/api/v1/releases/"+rel.ID))
	}
	if code, out, _ := vigil(t, s.with("releases", "show", rel.ID)...); code != 0 || !strings.Contains(out, "release 1.0.0 of "+product) || !strings.Contains(out, "app@"+clean) {
		t.Errorf("releases show: exit %d\n%s", code, out)
	}

	// A commit without a scan is named; --scan-missing queues it.
	code, _, stderr := vigil(t, s.with("releases", "create", "--product", product, "--version", "1.1.0", "--project", "app@"+next)...)
	if code != cli.ExitUsage || !strings.Contains(stderr, "MISSING_SCANS") || !strings.Contains(stderr, "app@"+next) {
		t.Errorf("releases create with a missing scan: exit %d %q, want 2 naming it", code, stderr)
	}
	vigilJSON(t, &rel, s.with("releases", "create", "--product", product, "--version", "1.1.0", "--project", "app@"+next, "--project", "app@"+clean, "--scan-missing", "--json")...)
	if rel.Status != "pending" || len(rel.Items) != 2 {
		t.Errorf("releases create --scan-missing: %+v, want pending", rel)
	}
	// (Polled through the API: each command gets a token, and the token
	// endpoint is rate-limited.)
	for deadline := time.Now().Add(5 * time.Minute); rel.Status == "pending"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("release 1.1.0 still pending")
		}
		json.Unmarshal([]byte(s.get("/api/v1/releases/"+rel.ID)), &rel)
	}
	if vigilJSON(t, &rel, s.with("releases", "show", rel.ID, "--json")...); rel.Status != "ready" {
		t.Errorf("release 1.1.0 after its scan: %+v", rel)
	}

	var list struct{ Releases []releaseOut }
	if got := vigilJSON(t, &list, s.with("releases", "list", "--product", product, "--json")...); got != s.get("/api/v1/releases?product="+product) {
		t.Errorf("releases list --json printed\n%s\nthe API answers\n%s", got, s.get("/api/v1/releases?product="+product))
	}
	if len(list.Releases) != 2 || list.Releases[0].Version != "1.0.0" || list.Releases[1].Version != "1.1.0" {
		t.Errorf("releases list: %+v", list)
	}
	if code, out, _ := vigil(t, s.with("releases", "list", "--product", product)...); code != 0 || !strings.Contains(out, "1.1.0") || !strings.Contains(out, "ready") {
		t.Errorf("releases list: exit %d\n%s", code, out)
	}

	// Bad input: exit 2, saying what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"releases", "create", "--product", product, "--version", "1.0.0"}, "CONFLICT"},
		{[]string{"releases", "create", "--product", "com.example.nope", "--version", "1"}, "com.example.nope"},
		{[]string{"releases", "create", "--product", product}, "--version"},
		{[]string{"releases", "create", "--product", product, "--version", "2", "--image", "registry.example.com/app:1"}, "REF@DIGEST"},
		{[]string{"releases", "list"}, "--product"},
		{[]string{"releases", "show", "nope"}, "NOT_FOUND"},
		{[]string{"projects", "update", "app", "--product", "com.example.nope"}, `"com.example.nope"`},
		{[]string{"projects", "update", "app", "--product", "", "--product", product}, "--product"},
	} {
		code, _, stderr := vigil(t, s.with(tc.args...)...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("vigil %s: exit %d %q; want %d saying %s", strings.Join(tc.args, " "), code, stderr, cli.ExitUsage, tc.want)
		}
	}
}
