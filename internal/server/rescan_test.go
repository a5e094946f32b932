package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// TestScheduledRescan: a project scheduled "@every 1s" gets its default
// branch head scanned, then rescanned as a scan of its own, while pushes
// of that commit stay idempotent and its gate keeps reading the first
// scan.
func TestScheduledRescan(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		r, _, head := repo(t)
		var p struct{ ID, Name string }
		if code := e.do("POST", "/api/v1/projects", map[string]any{
			"name": "cron", "repo_url": "file://" + r.Dir, "default_branch": "main",
			"webhook_secret": webhookSecret, "schedule": "@every 1s",
		}, &p); code != http.StatusCreated {
			t.Fatalf("create project: %d", code)
		}

		type listed struct {
			ID, Status, Commit string
			RescanOf           string `json:"rescan_of"`
			Trigger            string
		}
		var first, rescan listed
		deadline := time.Now().Add(5 * time.Minute)
		for rescan.ID == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no succeeded rescan after 5 minutes (first scan %+v)", first)
			}
			time.Sleep(250 * time.Millisecond)
			var l struct{ Scans []listed }
			if code := e.do("GET", "/api/v1/scans?project=cron&limit=500", nil, &l); code != 200 {
				t.Fatalf("list scans: %d", code)
			}
			for _, s := range l.Scans {
				if s.Commit != head {
					t.Fatalf("scan of %s, want only the head %s: %+v", s.Commit, head, s)
				}
				switch {
				case s.RescanOf == "":
					if first.ID != "" && first.ID != s.ID {
						t.Fatalf("two first scans of one commit: %s and %s", first.ID, s.ID)
					}
					first = s
				case s.Status == "succeeded":
					rescan = s
				}
			}
		}
		if first.ID == "" || rescan.RescanOf != first.ID || rescan.Trigger != "schedule" || first.Trigger != "event" {
			t.Fatalf("first %+v, rescan %+v", first, rescan)
		}

		// A push of the same commit is still a no-op on the first scan.
		var again struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "cron", "commit": head}, &again); code != 200 || again.ID != first.ID {
			t.Fatalf("POST scan of the head again: %d %+v, want 200 and %s", code, again, first.ID)
		}
		// The deploy gate reads the first scan, not the rescan.
		var g gateJSON
		if code := e.do("GET", "/api/v1/gate?project=cron&commit="+head, nil, &g); code != 200 || g.Decision != "fail" {
			t.Fatalf("gate: %d %+v", code, g)
		}
		if want := "/api/v1/scans/" + first.ID; len(g.Scan) < len(want) || g.Scan[len(g.Scan)-len(want):] != want {
			t.Errorf("gate scan %q, want the first scan %s", g.Scan, first.ID)
		}
		// Rescans do not pile up: at most one is waiting at a time.
		var l struct{ Scans []listed }
		e.do("GET", "/api/v1/scans?project=cron&limit=500", nil, &l)
		pending := 0
		for _, s := range l.Scans {
			if s.RescanOf != "" && (s.Status == "queued" || s.Status == "running") {
				pending++
			}
		}
		if pending > 1 {
			t.Errorf("%d rescans waiting at once, want at most 1", pending)
		}
		t.Logf("%s: %d scans of the head, first %s", dialect, len(l.Scans), first.ID)
	})
}
