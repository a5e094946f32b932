package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

func TestForge(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p, err := db.CreateProject(ctx, ci.Project{Name: "app", RepoURL: "https://github.com/acme/app.git"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetForge(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetForge of a project without one: err = %v, want ErrNotFound", err)
		}

		set, err := db.SetForge(ctx, ci.Forge{ProjectID: p.ID, APIURL: "https://api.github.com", Token: "sealed:1"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.GetForge(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, set); diff != "" {
			t.Errorf("GetForge() (-got +want):\n%s", diff)
		}

		// Setting again replaces.
		if _, err := db.SetForge(ctx, ci.Forge{ProjectID: p.ID, APIURL: "https://ghe.example.com/api/v3", Token: "sealed:2"}); err != nil {
			t.Fatal(err)
		}
		got, err = db.GetForge(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.APIURL != "https://ghe.example.com/api/v3" || got.Token != "sealed:2" {
			t.Errorf("after a second SetForge: %+v, want the new URL and token", got)
		}

		if _, err := db.SetForge(ctx, ci.Forge{ProjectID: "no-such-project", APIURL: "https://api.github.com", Token: "x"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetForge of an unknown project: err = %v, want ErrNotFound", err)
		}
		if _, err := db.SetForge(ctx, ci.Forge{ProjectID: p.ID, APIURL: "https://api.github.com"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("SetForge without a token: err = %v, want ErrInvalid", err)
		}
	})
}
