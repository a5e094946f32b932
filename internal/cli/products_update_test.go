package cli_test

import (
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/store"
)

// TestProductsUpdate runs `vigil products update` against `vigil serve`:
// a report schedule set (its --json is the API's answer), refused naming
// the spec, and cleared.
func TestProductsUpdate(t *testing.T) {
	s := serveAPI(t, store.SQLite)
	if code, b := s.do("POST", "/api/v1/products", map[string]any{"id": "com.example.app", "name": "App"}); code != 201 {
		t.Fatalf("create product: %d %s", code, b)
	}
	var p struct {
		Name           string
		ReportSchedule string   `json:"report_schedule"`
		Window         int      `json:"report_image_window_days"`
		Repos          []string `json:"report_image_repositories"`
	}
	got := vigilJSON(t, &p, s.with("products", "update", "com.example.app", "--name", "The App", "--report-schedule", "0 6 * * 1",
		"--report-image-window", "14", "--report-image-repo", "registry.example.com/team/app", "--json")...)
	if p.Name != "The App" || p.ReportSchedule != "0 6 * * 1" || p.Window != 14 || len(p.Repos) != 1 {
		t.Fatalf("products update: %+v", p)
	}
	if api := s.get("/api/v1/products/com.example.app"); got != api {
		t.Errorf("--json printed\n%s\nthe API answers\n%s", got, api)
	}

	code, _, stderr := vigil(t, s.with("products", "update", "com.example.app", "--report-schedule", "61 * * * *")...)
	if code != cli.ExitUsage || !strings.Contains(stderr, `"61 * * * *"`) || !strings.Contains(stderr, "--report-schedule") {
		t.Errorf("a bad spec: exit %d, %q", code, stderr)
	}
	if code, _, stderr := vigil(t, s.with("products", "update", "com.example.app")...); code != cli.ExitUsage || !strings.Contains(stderr, "nothing to change") {
		t.Errorf("no flag: exit %d, %q", code, stderr)
	}
	if code, _, stderr := vigil(t, s.with("products", "update", "com.example.nope", "--report-schedule", "@daily")...); code != cli.ExitUsage || !strings.Contains(stderr, "com.example.nope") {
		t.Errorf("an unknown product: exit %d, %q", code, stderr)
	}

	code, out, _ := vigil(t, s.with("products", "update", "com.example.app", "--report-schedule", "")...)
	if code != 0 || !strings.Contains(out, "report schedule: none") {
		t.Errorf("clear: exit %d\n%s", code, out)
	}
}
