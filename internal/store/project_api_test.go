package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// projectWithEverything makes a project with a policy, a forge, a waiver,
// a succeeded commit scan (gate summary, tracked findings) and a
// succeeded rescan of it; it returns the project.
func projectWithEverything(t *testing.T, db *store.DB, name string) ci.Project {
	t.Helper()
	ctx := context.Background()
	c, err := db.CreateProjectWith(ctx, ci.NewProject{
		Project:  ci.Project{Name: name, RepoURL: "https://example.com/acme/" + name, DefaultBranch: "main", WebhookSecret: "sealed"},
		ForgeURL: "https://api.example.com", ForgeToken: "sealed-token", Policy: "fail_on: {severity: high}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Project
	commit := strings.Repeat(fmt.Sprintf("%x", len(name)%16), 40)
	sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: commit})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetScanBranch(ctx, sc.ID, "main"); err != nil {
		t.Fatal(err)
	}
	finish := func(id string) {
		if _, err := db.MarkRunning(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSucceeded(ctx, id, ci.ScanResult{ResultKey: "k"}); err != nil {
			t.Fatal(err)
		}
		if err := db.PutGateSummary(ctx, id, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	finish(sc.ID)
	if err := db.RecordFindings(ctx, sc.ID, []ci.ObservedFinding{{Fingerprint: "fp", RuleID: "G404", Severity: "high", Confidence: "high", File: "a.go", Line: 1, Message: "m"}}); err != nil {
		t.Fatal(err)
	}
	if sc, err = db.GetScan(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	re, _, err := db.EnqueueRescan(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	finish(re.ID)
	if _, err := db.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: p.ID, Rule: "G404", Owner: "o", Reason: "r", Expires: time.Now().AddDate(0, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	return p
}

// rowsNaming counts, in every table with a project_id, scan_id or
// rescan_of column (found in the database's catalogue, so that a table
// added later is checked too), the rows that name the project or one of
// the scans.
func rowsNaming(t *testing.T, db *store.DB, projectID string, scanIDs []string) map[string]int {
	t.Helper()
	q := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'
		AND p.name IN ('project_id', 'scan_id', 'rescan_of', 'first_scan_id', 'last_scan_id', 'fixed_scan_id')`
	if db.Dialect() == store.Postgres {
		q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()
			AND column_name IN ('project_id', 'scan_id', 'rescan_of', 'first_scan_id', 'last_scan_id', 'fixed_scan_id')`
	}
	rows, err := db.SQL().Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 8 {
		t.Fatalf("found only %d columns naming projects or scans: %v", len(cols), cols)
	}
	ids := append([]string{projectID}, scanIDs...)
	got := map[string]int{}
	for _, c := range append(cols, [2]string{"projects", "id"}, [2]string{"scans", "id"}) {
		ph := make([]string, len(ids))
		args := make([]any, len(ids))
		for i, id := range ids {
			ph[i] = fmt.Sprintf("$%d", i+1)
			if db.Dialect() != store.Postgres {
				ph[i] = "?"
			}
			args[i] = id
		}
		var n int
		if err := db.SQL().QueryRow(fmt.Sprintf("SELECT count(*) FROM %s WHERE %s IN (%s)", c[0], c[1], strings.Join(ph, ", ")), args...).Scan(&n); err != nil {
			t.Fatalf("%s.%s: %v", c[0], c[1], err)
		}
		if n > 0 {
			got[c[0]+"."+c[1]] = n
		}
	}
	return got
}

func scanIDsOf(t *testing.T, db *store.DB, projectID string) []string {
	t.Helper()
	scans, _, err := db.ListScans(context.Background(), ci.ScanFilter{ProjectID: projectID, Limit: ci.MaxScanLimit})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range scans {
		ids = append(ids, s.ID)
	}
	return ids
}

func TestDeleteProjectLeavesNothing(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		gone := projectWithEverything(t, db, "gone")
		kept := projectWithEverything(t, db, "kept-project")
		goneScans, keptScans := scanIDsOf(t, db, gone.ID), scanIDsOf(t, db, kept.ID)
		if len(goneScans) != 2 {
			t.Fatalf("%d scans of the project, want a scan and its rescan", len(goneScans))
		}
		before := rowsNaming(t, db, kept.ID, keptScans)
		if n := len(rowsNaming(t, db, gone.ID, goneScans)); n < 9 {
			t.Fatalf("the fixture fills only %d columns", n)
		}

		if err := db.DeleteProject(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		if left := rowsNaming(t, db, gone.ID, goneScans); len(left) > 0 {
			t.Errorf("rows left naming the deleted project or its scans: %v", left)
		}
		if after := rowsNaming(t, db, kept.ID, keptScans); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the other project's rows changed: %v, were %v", after, before)
		}
		if err := db.DeleteProject(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete again: %v, want ErrNotFound", err)
		}
		// The name is free again.
		if _, err := db.CreateProject(ctx, ci.Project{Name: "gone"}); err != nil {
			t.Errorf("create a project of the deleted one's name: %v", err)
		}
	})
}

func TestDeleteProjectRefusedWhileScanning(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p := projectWithEverything(t, db, "busy")
		sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: strings.Repeat("b", 40)})
		if err != nil {
			t.Fatal(err)
		}
		ids := scanIDsOf(t, db, p.ID)
		before := rowsNaming(t, db, p.ID, ids)
		for _, step := range []string{"queued", "running"} {
			if step == "running" {
				if _, err := db.MarkRunning(ctx, sc.ID); err != nil {
					t.Fatal(err)
				}
			}
			err := db.DeleteProject(ctx, p.ID)
			if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), `"busy"`) {
				t.Errorf("delete with a scan %s: %v, want ErrConflict naming the project", step, err)
			}
			if after := rowsNaming(t, db, p.ID, ids); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("a refused delete changed rows: %v, were %v", after, before)
			}
		}
		if _, err := db.MarkFailed(ctx, sc.ID, "boom"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteProject(ctx, p.ID); err != nil {
			t.Errorf("delete once the scan has finished: %v", err)
		}
	})
}

func TestUpdateProject(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p := projectWithEverything(t, db, "app")
		str := func(s string) *string { return &s }

		// Only what is given changes.
		got, err := db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{Schedule: str("0 3 * * *")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Schedule != "0 3 * * *" || got.RepoURL != p.RepoURL || got.DefaultBranch != "main" || got.ForgeURL != "https://api.example.com" || got.PolicyVersion != 1 {
			t.Errorf("after a schedule update: %+v", got)
		}
		got, err = db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{RepoURL: str("https://example.com/acme/other"), DefaultBranch: str("dev"),
			ForgeURL: str("https://forge.example.com/api/v1"), ForgeToken: str("sealed-2")})
		if err != nil {
			t.Fatal(err)
		}
		f, err := db.GetForge(ctx, p.ID)
		if err != nil || f.Token != "sealed-2" || got.ForgeURL != "https://forge.example.com/api/v1" || got.RepoURL != "https://example.com/acme/other" || got.DefaultBranch != "dev" || got.Schedule != "0 3 * * *" {
			t.Errorf("after a repo and forge update: %+v, forge %+v %v", got, f, err)
		}
		// A refused check changes nothing.
		refused := errors.New("refused")
		_, err = db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{RemoveForge: true, Schedule: str(""), Check: func(s ci.ProjectSummary) error {
			if s.ForgeURL != "" || s.Schedule != "" {
				t.Errorf("the check sees %+v, not the project as it will be", s)
			}
			return refused
		}})
		if !errors.Is(err, refused) {
			t.Errorf("update with a failing check: %v", err)
		}
		if again, err := db.GetProjectSummary(ctx, "app"); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("a refused update changed the project: %+v (%v), was %+v", again, err, got)
		}
		got, err = db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{RemoveForge: true})
		if _, ferr := db.GetForge(ctx, p.ID); err != nil || got.ForgeURL != "" || !errors.Is(ferr, store.ErrNotFound) {
			t.Errorf("remove the forge: %+v %v %v", got, err, ferr)
		}
		if _, err := db.UpdateProject(ctx, "nope", ci.ProjectUpdate{Schedule: str("")}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update an unknown project: %v", err)
		}
		if _, err := db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{ForgeURL: str("https://x")}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a forge without a token: %v", err)
		}
	})
}

func TestSetPolicyAndRotateSecret(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p := projectWithEverything(t, db, "app")

		pol, created, err := db.SetPolicy(ctx, p.ID, "fail_on: {severity: low}\n")
		if err != nil || !created || pol.Version != 2 {
			t.Errorf("a new policy: %+v %v %v, want version 2", pol, created, err)
		}
		again, created, err := db.SetPolicy(ctx, p.ID, "fail_on: {severity: low}\n")
		if err != nil || created || again.Version != 2 || !again.CreatedAt.Equal(pol.CreatedAt) {
			t.Errorf("the same policy again: %+v %v %v, want version 2 unchanged", again, created, err)
		}
		if pol, created, err := db.SetPolicy(ctx, p.ID, "fail_on: {severity: high}\n"); err != nil || !created || pol.Version != 3 {
			t.Errorf("the first policy again: %+v %v %v, want version 3", pol, created, err)
		}
		if _, _, err := db.SetPolicy(ctx, "nope", "x: 1\n"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("policy of an unknown project: %v", err)
		}

		until := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		got, err := db.RotateWebhookSecret(ctx, p.ID, "sealed-2", until)
		if err != nil || got.WebhookSecret != "sealed-2" || got.PreviousWebhookSecret != "sealed" || !got.PreviousSecretUntil.Equal(until) {
			t.Errorf("rotate with a grace period: %+v %v", got, err)
		}
		got, err = db.RotateWebhookSecret(ctx, p.ID, "sealed-3", until)
		if err != nil || got.WebhookSecret != "sealed-3" || got.PreviousWebhookSecret != "sealed-2" {
			t.Errorf("rotate again: only the secret just replaced is kept: %+v %v", got, err)
		}
		got, err = db.RotateWebhookSecret(ctx, p.ID, "sealed-4", time.Time{})
		if err != nil || got.WebhookSecret != "sealed-4" || got.PreviousWebhookSecret != "" || !got.PreviousSecretUntil.IsZero() {
			t.Errorf("rotate without a grace period: %+v %v", got, err)
		}
		if read, err := db.GetProjectByName(ctx, "app"); err != nil || read != got {
			t.Errorf("read back: %+v %v, want %+v", read, err, got)
		}
		if _, err := db.RotateWebhookSecret(ctx, "nope", "s", until); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotate an unknown project: %v", err)
		}
	})
}

func TestListWaiverPage(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p := projectWithEverything(t, db, "app")
		other := projectWithEverything(t, db, "other")
		for i := range 4 {
			if _, err := db.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: p.ID, Rule: fmt.Sprintf("G%d", i), Owner: "o", Reason: "r", Expires: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := db.ListWaivers(ctx, p.ID)
		if err != nil || len(all) != 5 {
			t.Fatalf("%d waivers (%v)", len(all), err)
		}
		var got []string
		pg := ci.Page{Limit: 2}
		for range 10 {
			ws, next, err := db.ListWaiverPage(ctx, p.ID, pg)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if w.ProjectID != p.ID {
					t.Errorf("waiver %s of project %s in the list of %s", w.ID, w.ProjectID, p.ID)
				}
				got = append(got, w.ID)
			}
			if next == "" {
				break
			}
			pg.Cursor = next
		}
		var want []string
		for _, w := range all {
			want = append(want, w.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("paged waivers %v, want %v", got, want)
		}
		ows, _, err := db.ListWaiverPage(ctx, other.ID, ci.Page{})
		if err != nil || len(ows) != 1 {
			t.Errorf("the other project's waivers: %d %v", len(ows), err)
		}
		if _, _, err := db.ListWaiverPage(ctx, p.ID, ci.Page{Cursor: "bm9wZQ"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a bad cursor: %v", err)
		}
	})
}

func TestProjectProducts(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		for _, id := range []string{"com.example.a", "com.example.b"} {
			if _, err := db.CreateProduct(ctx, licensing.Product{ID: id, Name: id}); err != nil {
				t.Fatal(err)
			}
		}
		p := projectWithEverything(t, db, "app")
		other := projectWithEverything(t, db, "other")
		if got, err := db.GetProjectSummary(ctx, "app"); err != nil || got.Production || got.Products == nil || len(got.Products) != 0 {
			t.Fatalf("a new project: %+v %v, want no products and not in production", got, err)
		}

		products := []string{"com.example.b", "com.example.a", "com.example.b"}
		got, err := db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{Products: &products, Production: new(true)})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"com.example.a", "com.example.b"}
		if diff := cmp.Diff(want, got.Products); diff != "" || !got.Production {
			t.Errorf("after the update: production %v, products (-want +got):\n%s", got.Production, diff)
		}
		if again, err := db.GetProjectSummary(ctx, "app"); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("read back: %+v %v, want %+v", again, err, got)
		}
		page, _, err := db.ListProjectPage(ctx, ci.Page{})
		if err != nil || len(page) != 2 || !reflect.DeepEqual(page[0], got) || len(page[1].Products) != 0 {
			t.Errorf("the list: %+v %v", page, err)
		}
		in, err := db.ListProductProjects(ctx, "com.example.a")
		if err != nil || len(in) != 1 || in[0].Name != "app" {
			t.Errorf("projects of product a: %+v %v", in, err)
		}

		// An unknown product is named, and nothing changes.
		bad := []string{"com.example.a", "nope", "nope2"}
		_, err = db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{Products: &bad, Production: new(false), Schedule: new("@daily")})
		if !errors.Is(err, store.ErrInvalid) || !errors.Is(err, ci.ErrInvalid) || !strings.Contains(err.Error(), `"nope", "nope2"`) {
			t.Errorf("unknown products: %v, want ErrInvalid naming both", err)
		}
		if again, err := db.GetProjectSummary(ctx, "app"); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("a refused update changed the project: %+v %v, want %+v", again, err, got)
		}

		// Another project's links are its own; an empty list removes them.
		only := []string{"com.example.b"}
		if _, err := db.UpdateProject(ctx, other.ID, ci.ProjectUpdate{Products: &only}); err != nil {
			t.Fatal(err)
		}
		none := []string{}
		if got, err = db.UpdateProject(ctx, p.ID, ci.ProjectUpdate{Products: &none}); err != nil || len(got.Products) != 0 || !got.Production {
			t.Errorf("products cleared: %+v %v", got, err)
		}
		if in, err := db.ListProductProjects(ctx, "com.example.b"); err != nil || len(in) != 1 || in[0].Name != "other" {
			t.Errorf("projects of product b: %+v %v", in, err)
		}
		if err := db.DeleteProject(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		if in, err := db.ListProductProjects(ctx, "com.example.b"); err != nil || len(in) != 0 {
			t.Errorf("a deleted project still ships: %+v %v", in, err)
		}
	})
}
