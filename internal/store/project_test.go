package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

func TestProjects(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)

		want := ci.Project{
			Name:          "api",
			RepoURL:       "https://git.example.com/api.git",
			DefaultBranch: "main",
			WebhookSecret: "sealed:abc",
			Schedule:      "0 3 * * *",
		}
		before := time.Now().UTC().Add(-time.Second)
		p, err := db.CreateProject(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID == "" || p.CreatedAt.Before(before) || p.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreateProject() = %+v: want an ID and a UTC creation time", p)
		}
		want.ID, want.CreatedAt = p.ID, p.CreatedAt

		got, err := db.GetProject(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetProject() mismatch (-want +got):\n%s", diff)
		}
		got, err = db.GetProjectByName(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetProjectByName() mismatch (-want +got):\n%s", diff)
		}

		if _, err := db.CreateProject(ctx, ci.Project{Name: "api"}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateProject(duplicate name) error = %v, want ErrConflict", err)
		}
		if _, err := db.CreateProject(ctx, ci.Project{Name: " "}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateProject(empty name) error = %v, want ErrInvalid", err)
		}
		if _, err := db.GetProject(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetProject(unknown) error = %v, want ErrNotFound", err)
		}
		if _, err := db.GetProjectByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetProjectByName(unknown) error = %v, want ErrNotFound", err)
		}

		if _, err := db.CreateProject(ctx, ci.Project{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		ps, err := db.ListProjects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if diff := cmp.Diff([]string{"api", "web"}, names); diff != "" {
			t.Errorf("ListProjects() names mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p, err := db.CreateProject(ctx, ci.Project{Name: "api"})
		if err != nil {
			t.Fatal(err)
		}

		if _, err := db.GetPolicy(ctx, p.ID, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetPolicy(no policy) error = %v, want ErrNotFound", err)
		}
		// Concurrent writers each get their own version.
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if _, err := db.AddPolicy(ctx, p.ID, "fail_on: high"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		last, err := db.AddPolicy(ctx, p.ID, "fail_on: critical")
		if err != nil {
			t.Fatal(err)
		}
		if last.Version != 6 {
			t.Errorf("sixth AddPolicy() version = %d, want 6", last.Version)
		}
		got, err := db.GetPolicy(ctx, p.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(last, got); diff != "" {
			t.Errorf("GetPolicy(latest) mismatch (-want +got):\n%s", diff)
		}
		got, err = db.GetPolicy(ctx, p.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 1 || got.Body != "fail_on: high" {
			t.Errorf("GetPolicy(1) = %+v", got)
		}
		if _, err := db.AddPolicy(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddPolicy(unknown project) error = %v, want ErrNotFound", err)
		}
	})
}
