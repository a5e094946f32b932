package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
)

// TestScanInputNeverReachesGitAsAnOption: a commit, a branch, a default
// branch or a repository URL that git could read as an option or a
// remote helper is refused as bad input, and no command runs.
func TestScanInputNeverReachesGitAsAnOption(t *testing.T) {
	e := setup(t, store.SQLite)
	r, clean, _ := repo(t)
	e.createProject("app", "file://"+r.Dir)
	marker := filepath.Join(t.TempDir(), "pwned")
	before := countScans(t, e.db)
	for _, tt := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"upload-pack commit", map[string]any{"project": "app", "commit": "--upload-pack=touch " + marker + ";"}, "commit"},
		{"option commit", map[string]any{"project": "app", "commit": "-c"}, "commit"},
		{"output commit", map[string]any{"project": "app", "commit": "--output=" + marker}, "commit"},
		{"option branch", map[string]any{"project": "app", "commit": clean, "branch": "--upload-pack=touch " + marker}, "branch"},
		{"revision syntax branch", map[string]any{"project": "app", "commit": clean, "branch": "main@{1}"}, "branch"},
	} {
		var got apiError
		if code := e.do("POST", "/api/v1/scans", tt.body, &got); code != http.StatusBadRequest || got.Code != "INVALID_FIELD" || !strings.HasPrefix(got.Message, tt.field+":") {
			t.Errorf("%s: %d %+v, want 400 INVALID_FIELD naming %s", tt.name, code, got, tt.field)
		}
	}
	for _, tt := range []struct{ name, repo, branch string }{
		{"option repo", "--upload-pack=touch " + marker + ";", "main"},
		{"ext helper", "ext::sh -c touch% " + marker, "main"},
		{"fd helper", "fd::3", "main"},
		{"ssh host option", "ssh://-oProxyCommand=touch%20" + marker + "/r", "main"},
		{"scp host option", "git@-oProxyCommand=touch:r", "main"},
		{"option default branch", "file://" + r.Dir, "--upload-pack=touch " + marker},
		{"revision default branch", "file://" + r.Dir, "main@{1}"},
	} {
		var got apiError
		code := e.do("POST", "/api/v1/projects", map[string]any{
			"name": "bad", "repo_url": tt.repo, "default_branch": tt.branch, "webhook_secret": webhookSecret,
		}, &got)
		if code != http.StatusBadRequest || got.Code != "INVALID_FIELD" {
			t.Errorf("%s: %d %+v, want 400 INVALID_FIELD", tt.name, code, got)
		}
	}
	if n := countScans(t, e.db); n != before {
		t.Errorf("%d scans recorded, want %d: bad input changes nothing", n, before)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a command ran")
	}
}
