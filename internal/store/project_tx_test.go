package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// failPolicyWrites makes every insert into policies fail, in the real
// database, as a full disk or a lost connection would.
func failPolicyWrites(t *testing.T, db *store.DB) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER fail_policies BEFORE INSERT ON policies BEGIN SELECT RAISE(ABORT, 'policy write failed'); END`}
	if db.Dialect() == store.Postgres {
		stmts = []string{
			`CREATE FUNCTION fail_policies() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'policy write failed'; END $$`,
			`CREATE TRIGGER fail_policies BEFORE INSERT ON policies FOR EACH ROW EXECUTE FUNCTION fail_policies()`,
		}
	}
	for _, q := range stmts {
		if _, err := db.SQL().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateProjectWithIsOneTransaction(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)

		c, err := db.CreateProjectWith(ctx, ci.NewProject{
			Project:  ci.Project{Name: "ok", RepoURL: "https://example.com/a/b"},
			ForgeURL: "https://api.example.com", ForgeToken: "sealed", Policy: "fail_on: {severity: high}\n",
		})
		if err != nil || c.PolicyVersion != 1 || c.Project.ID == "" {
			t.Fatalf("CreateProjectWith = %+v, %v", c, err)
		}
		sum, err := db.GetProjectSummary(ctx, "ok")
		if err != nil || sum.PolicyVersion != 1 || sum.ForgeURL != "https://api.example.com" {
			t.Fatalf("GetProjectSummary = %+v, %v", sum, err)
		}

		failPolicyWrites(t, db)
		_, err = db.CreateProjectWith(ctx, ci.NewProject{
			Project:  ci.Project{Name: "broken", RepoURL: "https://example.com/a/c"},
			ForgeURL: "https://api.example.com", ForgeToken: "sealed", Policy: "fail_on: {severity: high}\n",
		})
		if err == nil {
			t.Fatal("CreateProjectWith with a failing policy write = nil")
		}
		if _, err := db.GetProjectByName(ctx, "broken"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("project after the failed create: %v, want ErrNotFound", err)
		}
		var forges int
		if err := db.SQL().QueryRow("SELECT count(*) FROM project_forges").Scan(&forges); err != nil || forges != 1 {
			t.Errorf("%d forges after the failed create (%v), want only the first project's", forges, err)
		}
		// The name is free again.
		if _, err := db.CreateProject(ctx, ci.Project{Name: "broken"}); err != nil {
			t.Errorf("create after the failed create: %v", err)
		}
	})
}

func TestProjectPagesAndNames(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		var ids []string
		for _, n := range []string{"c", "a", "b"} {
			p, err := db.CreateProject(ctx, ci.Project{Name: n})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p.ID)
		}
		var got []string
		cursor := ""
		for range 5 {
			page, next, err := db.ListProjectPage(ctx, ci.Page{Cursor: cursor, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				got = append(got, p.Name)
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		if len(got) != 3 || got[0] != "c" || got[1] != "a" || got[2] != "b" {
			t.Errorf("pages = %v, want c a b (oldest first)", got)
		}
		names, err := db.ProjectNames(ctx, append(ids, ids[0], "no-such-id"))
		if err != nil || len(names) != 3 || names[ids[1]] != "a" {
			t.Errorf("ProjectNames = %v, %v", names, err)
		}
		if _, _, err := db.ListProjectPage(ctx, ci.Page{Cursor: "bm9wZQ"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a foreign cursor: %v, want ErrInvalid", err)
		}
	})
}
