package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
)

func TestReportSchedules(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		for _, id := range []string{"com.example.app", "com.example.agent"} {
			if _, err := db.CreateProduct(ctx, licensing.Product{ID: id, Name: id}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ReportSchedule(ctx, "com.example.app"); !errors.Is(err, reports.ErrNotFound) {
			t.Fatalf("no schedule yet: %v, want ErrNotFound", err)
		}
		s, err := db.PutReportSchedule(ctx, reports.ReportSchedule{ProductID: "com.example.app", Spec: "0 6 * * 1", ImageWindowDays: 30,
			ImageRepositories: []string{"registry.example.com/a", "registry.example.com/b"}})
		if err != nil || s.UpdatedAt.IsZero() {
			t.Fatalf("put: %+v %v", s, err)
		}
		got, err := db.ReportSchedule(ctx, "com.example.app")
		if err != nil || got.Spec != "0 6 * * 1" || got.ImageWindowDays != 30 || !slices.Equal(got.ImageRepositories, s.ImageRepositories) || !got.UpdatedAt.Equal(s.UpdatedAt) {
			t.Fatalf("get: %+v %v, want %+v", got, err, s)
		}
		// Replaced; one without a spec is not listed.
		if _, err := db.PutReportSchedule(ctx, reports.ReportSchedule{ProductID: "com.example.app", Spec: "", ImageWindowDays: 7}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PutReportSchedule(ctx, reports.ReportSchedule{ProductID: "com.example.agent", Spec: "@daily", ImageWindowDays: 30}); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.ReportSchedule(ctx, "com.example.app"); got.Spec != "" || got.ImageWindowDays != 7 || len(got.ImageRepositories) != 0 {
			t.Errorf("replaced: %+v", got)
		}
		list, err := db.ListReportSchedules(ctx)
		if err != nil || len(list) != 1 || list[0].ProductID != "com.example.agent" {
			t.Errorf("list: %+v %v, want the agent's alone", list, err)
		}
		for _, bad := range []reports.ReportSchedule{
			{ProductID: "com.example.nope", Spec: "@daily", ImageWindowDays: 30},
			{ProductID: "com.example.app", ImageWindowDays: 0},
			{ProductID: "com.example.app", ImageWindowDays: 30, ImageRepositories: []string{"a b"}},
		} {
			if _, err := db.PutReportSchedule(ctx, bad); err == nil {
				t.Errorf("put %+v: no error", bad)
			}
		}
		if _, err := db.PutReportSchedule(ctx, reports.ReportSchedule{ProductID: "com.example.nope", ImageWindowDays: 30}); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("an unknown product: %v, want ErrNotFound", err)
		}
	})
}

// TestReleaseImageScans: the first scans of image digests in a window,
// for projects or in repositories matched as names, not patterns.
func TestReleaseImageScans(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)
		other, err := db.CreateProject(ctx, ci.Project{Name: "other", RepoURL: "https://example.com/other.git", DefaultBranch: "main"})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now().Add(-time.Second)
		enqueue := func(i int, project, ref string) ci.Scan {
			t.Helper()
			sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest(i), ImageRef: ref, ProjectID: project})
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}
		app := enqueue(1, p.ID, "registry.example.com/team/app:1.0")
		enqueue(2, other.ID, "registry.example.com/team/other:1.0")
		byDigest := enqueue(3, "", "registry.example.com/team/app@"+digest(3))
		bare := enqueue(4, "", "registry.example.com/team/app")
		enqueue(5, "", "registry.example.com/team/app-two:1.0") // a longer name, not the repository
		enqueue(6, "", "registry.example.com/team/appx:1.0")
		enqueue(7, "", "registry.example.com/team_app:1.0") // '_' is not a pattern
		tagged := enqueue(8, "", "registry.example.com/team/lib:2")
		// A rescan is no first scan.
		if _, err := db.MarkRunning(ctx, app.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkFailed(ctx, app.ID, "boom"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.EnqueueRescan(ctx, app); err != nil {
			t.Fatal(err)
		}
		after := time.Now().Add(time.Second)

		ids := func(scans []ci.Scan) []string {
			var out []string
			for _, s := range scans {
				out = append(out, s.ImageDigest)
			}
			slices.Sort(out)
			return out
		}
		for _, tt := range []struct {
			name         string
			projects     []string
			repositories []string
			since, until time.Time
			want         []string
		}{
			{"project", []string{p.ID}, nil, before, after, []string{app.ImageDigest}},
			{"repository", nil, []string{"registry.example.com/team/app"}, before, after, []string{app.ImageDigest, byDigest.ImageDigest, bare.ImageDigest}},
			{"both", []string{p.ID}, []string{"registry.example.com/team/lib"}, before, after, []string{app.ImageDigest, tagged.ImageDigest}},
			{"underscore", nil, []string{"registry.example.com/team_app"}, before, after, []string{digest(7)}},
			{"before the window", []string{p.ID, other.ID}, nil, after, after.Add(time.Hour), nil},
			{"after the window", []string{p.ID, other.ID}, nil, before.Add(-time.Hour), before, nil},
			{"nothing asked", nil, nil, before, after, nil},
		} {
			got, err := db.ReleaseImageScans(ctx, tt.projects, tt.repositories, tt.since, tt.until)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if g := ids(got); !slices.Equal(g, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, g, tt.want)
			}
			for _, s := range got {
				if s.RescanOf != "" {
					t.Errorf("%s: a rescan %+v", tt.name, s)
				}
			}
		}
	})
}
