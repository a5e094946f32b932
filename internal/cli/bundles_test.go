package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/internal/store"
)

// TestBundlesCommands builds the audit report bundle of a release of a
// real scan with `vigil bundles build -o`, checks it with `vigil verify
// --server`, downloads it again with `vigil bundles download`, and has
// the refusals exit 2. SQLite only: the store's side runs on both
// databases in internal/store and reports/publish.
func TestBundlesCommands(t *testing.T) {
	s := serveAPI(t, store.SQLite, "--outbound-schemes", "https,file")
	const product = "com.example.app"
	if code, b := s.do("POST", "/api/v1/products", map[string]any{"id": product, "name": "App"}); code != http.StatusCreated {
		t.Fatalf("create product: %d %s", code, b)
	}
	var tn struct{ ID string }
	if code, b := s.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}); code != http.StatusCreated || json.Unmarshal([]byte(b), &tn) != nil {
		t.Fatalf("create tenant: %d %s", code, b)
	}
	r := gittest.New(t)
	clean := r.Commit("clean", map[string]string{"go.mod": "module example.com/app\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() {}\n"})
	if code, _, _ := vigil(t, s.with("projects", "create", "app", "--repo", "file://"+r.Dir)...); code != 0 {
		t.Fatalf("projects create: exit %d", code)
	}
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
	var rel struct{ ID, Status string }
	if code, b := s.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.0.0", "projects": []string{"app@" + clean}}); code != http.StatusCreated || json.Unmarshal([]byte(b), &rel) != nil || rel.Status != "ready" {
		t.Fatalf("create release: %d %s", code, b)
	}

	dir := t.TempDir()
	zipPath := filepath.Join(dir, "report.zip")
	var bundle struct {
		ID, SHA256, Ticket string
		Size               int64
	}
	got := vigilJSON(t, &bundle, s.with("bundles", "build", "--release", rel.ID, "--tenant", tn.ID, "-o", zipPath, "--json")...)
	if bundle.ID == "" || bundle.Ticket != "none" || got != s.get("/api/v1/bundles/"+bundle.ID) {
		t.Errorf("bundles build --json printed\n%s\nthe API answers\n%s", got, s.get("/api/v1/bundles/"+bundle.ID))
	}
	zipBytes, err := os.ReadFile(zipPath)
	if err != nil || int64(len(zipBytes)) != bundle.Size {
		t.Fatalf("the downloaded bundle: %d bytes (%v), want %d", len(zipBytes), err, bundle.Size)
	}
	if code, out, _ := vigil(t, s.with("verify", zipPath)...); code != 0 {
		t.Errorf("vigil verify --server: exit %d\n%s", code, out)
	}
	again := filepath.Join(dir, "again.zip")
	if code, out, _ := vigil(t, s.with("bundles", "download", bundle.ID, "-o", again)...); code != 0 || !strings.Contains(out, bundle.SHA256) {
		t.Errorf("bundles download: exit %d\n%s", code, out)
	}
	if b, err := os.ReadFile(again); err != nil || !bytes.Equal(b, zipBytes) {
		t.Errorf("downloaded again: %d bytes (%v), want the same bytes", len(b), err)
	}
	if code, out, _ := vigil(t, s.with("bundles", "build", "--release", rel.ID, "--tenant", tn.ID)...); code != 0 || !strings.Contains(out, "bundle "+bundle.ID) || !strings.Contains(out, "summary.pdf") {
		t.Errorf("bundles build again: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bundles", "build", "--release", "nope", "--tenant", tn.ID}, "NOT_FOUND"},
		{[]string{"bundles", "build", "--release", rel.ID, "--tenant", "nope"}, "nope"},
		{[]string{"bundles", "build", "--release", rel.ID}, "--tenant"},
		{[]string{"bundles", "download", bundle.ID}, "-o"},
		{[]string{"bundles", "download", "nope", "-o", filepath.Join(dir, "x.zip")}, "NOT_FOUND"},
	} {
		code, _, stderr := vigil(t, s.with(tc.args...)...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("vigil %s: exit %d %q; want %d saying %s", strings.Join(tc.args, " "), code, stderr, cli.ExitUsage, tc.want)
		}
	}
}
