package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
)

// vigil scans start|list|show|report against a running server: the
// same scans the API answers, --json as the API wrote it.
func TestScansCommands(t *testing.T) {
	s := serveAPI(t, store.SQLite, "--outbound-schemes", "https,file")
	r := gittest.New(t)
	commit := r.Commit("weak", map[string]string{"go.mod": "module example.com/app\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Int()) }\n"})
	if code, _, _ := vigil(t, s.with("projects", "create", "app", "--repo", "file://"+r.Dir)...); code != 0 {
		t.Fatalf("projects create: exit %d", code)
	}

	var started struct{ ID, Status string }
	vigilJSON(t, &started, s.with("scans", "start", "--project", "app", "--commit", commit, "--json")...)
	if started.ID == "" {
		t.Fatalf("scans start: %+v", started)
	}
	var sc struct{ ID, Status, Error string }
	for deadline := time.Now().Add(5 * time.Minute); sc.Status != "succeeded"; time.Sleep(200 * time.Millisecond) {
		if sc.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("scan: %+v", sc)
		}
		json.Unmarshal([]byte(s.get("/api/v1/scans/"+started.ID)), &sc)
	}

	if got := vigilJSON(t, &sc, s.with("scans", "show", started.ID, "--json")...); got != s.get("/api/v1/scans/"+started.ID) {
		t.Errorf("scans show --json printed\n%s\nthe API answers\n%s", got, s.get("/api/v1/scans/"+started.ID))
	}
	if code, out, _ := vigil(t, s.with("scans", "show", started.ID)...); code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "app @ "+commit) {
		t.Errorf("scans show: exit %d\n%s", code, out)
	}
	if code, out, _ := vigil(t, s.with("scans", "list", "--project", "app")...); code != 0 || !strings.Contains(out, started.ID) || !strings.Contains(out, commit[:12]) {
		t.Errorf("scans list: exit %d\n%s", code, out)
	}
	sarif := filepath.Join(t.TempDir(), "scan.sarif")
	if code, _, stderr := vigil(t, s.with("scans", "report", started.ID, "--format", "sarif", "-o", sarif)...); code != 0 {
		t.Fatalf("scans report: exit %d %s", code, stderr)
	}
	if b, err := os.ReadFile(sarif); err != nil || !strings.Contains(string(b), `"G404"`) {
		t.Errorf("the SARIF report: %v\n%.300s", err, b)
	}

	// The findings it tracks, and a waiver of them.
	if code, out, _ := vigil(t, s.with("findings", "list", "--project", "app")...); code != 0 || !strings.Contains(out, "G404") || !strings.Contains(out, "open") {
		t.Errorf("findings list: exit %d\n%s", code, out)
	}
	var wv struct{ ID, Owner string }
	vigilJSON(t, &wv, s.with("waivers", "create", "--project", "app", "--rule", "G404", "--owner", "sec@example.com",
		"--reason", "not for secrets", "--expires", "2099-12-31", "--json")...)
	if wv.ID == "" || wv.Owner != "sec@example.com" {
		t.Fatalf("waivers create: %+v", wv)
	}
	if code, out, _ := vigil(t, s.with("waivers", "list", "--project", "app")...); code != 0 || !strings.Contains(out, wv.ID) || !strings.Contains(out, "rule=G404") {
		t.Errorf("waivers list: exit %d\n%s", code, out)
	}
	if code, _, _ := vigil(t, s.with("waivers", "delete", wv.ID)...); code != 0 {
		t.Errorf("waivers delete: exit %d", code)
	}

	for _, args := range [][]string{
		{"waivers", "create", "--project", "app", "--rule", "G404", "--reason", "r", "--expires", "2099-12-31"}, // no owner
		{"waivers", "delete", wv.ID}, // deleted already
		{"findings", "list"},
		{"scans", "show", "no-such-scan"},
		{"scans", "list", "--project", "no-such-project"},
		{"scans", "report", started.ID, "--format", "pdf"},
		{"scans", "start", "--project", "app"},
	} {
		if code, _, stderr := vigil(t, s.with(args...)...); code != cli.ExitUsage {
			t.Errorf("vigil %v: exit %d, want %d\n%s", args, code, cli.ExitUsage, stderr)
		}
	}
}
