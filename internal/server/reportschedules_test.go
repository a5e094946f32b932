package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
)

type productJSON struct {
	ID, Name       string
	ReportSchedule string   `json:"report_schedule"`
	Window         int      `json:"report_image_window_days"`
	Repos          []string `json:"report_image_repositories"`
}

// TestReportSchedule: a product's report schedule is set, shown and
// cleared through PATCH /api/v1/products/{id}, which registers and
// removes its periodic job; a run of the job cuts one release per tick
// from the production project's default branch and the image scanned in
// the window, named after the tick; bad specs are refused naming them;
// a restarted server registers the schedules again.
func TestReportSchedule(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ctx := context.Background()
		r, clean, _ := repo(t)
		e.createProject("app", "file://"+r.Dir)
		e.createProduct(product)
		e.createProduct("com.example.empty")
		fx := imagetest.New(t)
		scan := func(body map[string]any) {
			var ref struct{ ID string }
			if code := e.do("POST", "/api/v1/scans", body, &ref); code != http.StatusAccepted {
				t.Fatalf("POST scan %v: %d", body, code)
			}
			if s := e.waitScan(ref.ID); s.Status != "succeeded" {
				t.Fatalf("scan %v: %s (%s)", body, s.Status, s.Error)
			}
		}
		scan(map[string]any{"project": "app", "commit": clean})
		scan(map[string]any{"image": fx.Ref})
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"products": []string{product}, "production": true}, nil); code != 200 {
			t.Fatalf("PATCH app: %d", code)
		}
		repository := fx.Registry + "/vigil/fixture"

		// Set, shown, registered.
		var p productJSON
		if code := e.do("PATCH", "/api/v1/products/"+product, map[string]any{"report_schedule": "CRON_TZ=UTC 0 6 * * 1",
			"report_image_repositories": []string{repository}}, &p); code != 200 {
			t.Fatalf("PATCH schedule: %d", code)
		}
		if p.ID != product || p.ReportSchedule != "CRON_TZ=UTC 0 6 * * 1" || p.Window != 30 || len(p.Repos) != 1 || p.Repos[0] != repository {
			t.Errorf("PATCH answer %+v", p)
		}
		var got productJSON
		if code := e.do("GET", "/api/v1/products/"+product, nil, &got); code != 200 || got.ReportSchedule != p.ReportSchedule || got.Window != 30 {
			t.Errorf("GET: %d %+v", code, got)
		}
		if !server.TakeReportSchedule(e.srv, product) {
			t.Fatal("no periodic job after PATCH")
		}
		if code := e.do("PATCH", "/api/v1/products/"+product, map[string]any{"report_schedule": "CRON_TZ=UTC 0 6 * * 1", "report_image_window_days": 14, "name": "The App"}, &p); code != 200 || p.Window != 14 || p.Name != "The App" || len(p.Repos) != 1 {
			t.Fatalf("PATCH window and name: %d %+v", code, p)
		}

		// A run of the job cuts the tick's release, whether River
		// enqueued it a little before the tick or late. The tick is the
		// next Monday 06:00 UTC: a release takes what was scanned before
		// its tick, and the scans above were made now.
		now := time.Now().UTC()
		tick := time.Date(now.Year(), now.Month(), now.Day(), 6, 0, 0, 0, time.UTC)
		for tick.Weekday() != time.Monday || !tick.After(now) {
			tick = tick.AddDate(0, 0, 1)
		}
		version := "scheduled-" + tick.Format("2006-01-02") + "T0600Z"
		sch := e.srv.Schedules()
		job := reports.ScheduleJob(product)
		for _, enqueued := range []time.Time{tick.Add(-80 * time.Millisecond), tick, tick.Add(3 * time.Minute)} {
			if err := sch.RunPeriodic(ctx, job, enqueued); err != nil {
				t.Fatalf("run enqueued at %s: %v", enqueued, err)
			}
		}
		var list struct{ Releases []releaseJSON }
		if code := e.do("GET", "/api/v1/releases?product="+product, nil, &list); code != 200 || len(list.Releases) != 1 {
			t.Fatalf("releases after three runs of one tick: %d %+v, want one", code, list)
		}
		rel := list.Releases[0]
		if rel.Version != version || rel.Status != "ready" || len(rel.Items) != 2 {
			t.Fatalf("the scheduled release %+v, want %s ready with the commit and the image", rel, version)
		}
		if it := rel.Items[0]; it.Kind != "commit" || it.Project != "app" || it.Commit != clean {
			t.Errorf("its commit %+v, want app at %s", it, clean)
		}
		if it := rel.Items[1]; it.Kind != "image" || it.Digest != fx.Digest || !strings.HasPrefix(it.Image, repository) {
			t.Errorf("its image %+v, want %s@%s", it, repository, fx.Digest)
		}
		// A tick whose window no longer holds the image's scan: the
		// commit alone.
		later := tick.AddDate(0, 0, 28)
		if _, made, err := sch.Cut(ctx, product, later); err != nil || !made {
			t.Fatalf("cut four weeks on: %v, %v", made, err)
		}
		e.do("GET", "/api/v1/releases?product="+product, nil, &list)
		if n := len(list.Releases); n != 2 || len(list.Releases[1].Items) != 1 || list.Releases[1].Items[0].Kind != "commit" ||
			list.Releases[1].Version != "scheduled-"+later.Format("2006-01-02")+"T0600Z" {
			t.Errorf("the release past the image window: %+v", list.Releases[n-1])
		}

		// Nothing to release: skipped.
		if code := e.do("PATCH", "/api/v1/products/com.example.empty", map[string]any{"report_schedule": "@daily"}, nil); code != 200 {
			t.Fatalf("PATCH empty: %d", code)
		}
		if err := sch.RunPeriodic(ctx, reports.ScheduleJob("com.example.empty"), now); err != nil {
			t.Errorf("a product with nothing to release: %v", err)
		}
		if code := e.do("GET", "/api/v1/releases?product=com.example.empty", nil, &list); code != 200 || len(list.Releases) != 0 {
			t.Errorf("releases of a product with nothing: %+v", list.Releases)
		}

		// Bad specs are refused, naming the spec; nothing changes.
		var apiErr struct{ Code, Message string }
		for _, bad := range []map[string]any{
			{"report_schedule": "61 * * * *"},
			{"report_schedule": "@every 1h"},
			{"report_schedule": "0 0 30 2 *"},
			{"report_schedule": "0 6 * * 1\n"},
			{"report_image_window_days": 0},
			{"report_image_window_days": 366},
			{"report_image_repositories": []string{"registry.example.com/app:1.0"}},
			{"name": "Renamed", "report_schedule": "nope"},
			{},
		} {
			if code := e.do("PATCH", "/api/v1/products/"+product, bad, &apiErr); code != http.StatusBadRequest || apiErr.Code != httpx.CodeInvalidField {
				t.Errorf("PATCH %v: %d %+v, want 400", bad, code, apiErr)
			}
			if spec, ok := bad["report_schedule"].(string); ok && !strings.Contains(apiErr.Message, strings.TrimSpace(spec)) {
				t.Errorf("PATCH %v: %q does not name the spec", bad, apiErr.Message)
			}
		}
		if e.do("GET", "/api/v1/products/"+product, nil, &got); got.ReportSchedule != "CRON_TZ=UTC 0 6 * * 1" || got.Window != 14 || got.Name != "The App" {
			t.Errorf("after refused PATCHes: %+v", got)
		}
		if code := e.do("PATCH", "/api/v1/products/com.example.nope", map[string]any{"report_schedule": "@daily"}, &apiErr); code != http.StatusNotFound {
			t.Errorf("an unknown product: %d %+v", code, apiErr)
		}

		// A restarted server registers the schedules again.
		restarted := restart(t, e)
		if !server.TakeReportSchedule(restarted, product) || !server.TakeReportSchedule(restarted, "com.example.empty") {
			t.Error("a restarted server did not register the report schedules")
		}

		// Cleared: the job is removed; a run left in the queue cuts nothing.
		var cleared productJSON
		if code := e.do("PATCH", "/api/v1/products/"+product, map[string]any{"report_schedule": ""}, &cleared); code != 200 || cleared.ReportSchedule != "" || cleared.Window != 14 {
			t.Fatalf("PATCH clear: %d %+v", code, cleared)
		}
		if server.TakeReportSchedule(e.srv, product) {
			t.Error("the periodic job is still there after clearing the schedule")
		}
		if err := sch.RunPeriodic(ctx, job, tick.AddDate(0, 0, 7)); err != nil {
			t.Fatal(err)
		}
		if e.do("GET", "/api/v1/releases?product="+product, nil, &list); len(list.Releases) != 2 {
			t.Errorf("a run after clearing cut a release: %d releases", len(list.Releases))
		}
	})
}

// restart starts another server on e's store, as a restart would.
func restart(t *testing.T, e *env) *server.Server {
	t.Helper()
	blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	jcfg := jobs.DefaultConfig()
	jcfg.Workers = 1
	srv, err := server.New(context.Background(), server.Config{DB: e.db, Blobs: blobs, SealKey: e.sealKey, Jobs: &jcfg,
		Outbound: &httpx.OutboundPolicy{AllowLoopback: true, Schemes: []string{"https", "http", "ssh", "git", "file"}},
		Logger:   slog.New(slog.NewTextHandler(&logBuffer{t: t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv.Stop(ctx)
	})
	return srv
}
