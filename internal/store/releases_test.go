package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
)

func TestReleases(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		if _, err := db.CreateProduct(ctx, licensing.Product{ID: "com.example.app", Name: "App"}); err != nil {
			t.Fatal(err)
		}
		p := projectWithEverything(t, db, "app")
		commitScan, err := db.FindCommitScan(ctx, p.ID, strings.Repeat("3", 40))
		if err != nil {
			t.Fatal(err)
		}
		digest := "sha256:" + strings.Repeat("ab", 32)
		imageScan, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest, ImageRef: "registry.example.com/app:1"})
		if err != nil {
			t.Fatal(err)
		}
		commitItem := reports.ReleaseItem{Kind: ci.KindCommit, Project: "app", Commit: commitScan.CommitSHA, ScanID: commitScan.ID}
		imageItem := reports.ReleaseItem{Kind: ci.KindImage, ImageRef: "registry.example.com/app:1", Digest: digest, ScanID: imageScan.ID}

		r1, err := db.CreateRelease(ctx, reports.StoredRelease{ProductID: "com.example.app", Version: "1.0.0", Items: []reports.ReleaseItem{commitItem}})
		if err != nil || r1.ID == "" || r1.CreatedAt.IsZero() {
			t.Fatalf("create 1.0.0: %+v %v", r1, err)
		}
		r2, err := db.CreateRelease(ctx, reports.StoredRelease{ProductID: "com.example.app", Version: "1.1.0", Items: []reports.ReleaseItem{imageItem, commitItem}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.GetRelease(ctx, r2.ID)
		if err != nil || got.Version != "1.1.0" || got.ProductID != "com.example.app" || len(got.Items) != 2 {
			t.Fatalf("get 1.1.0: %+v %v", got, err)
		}
		// In the order given, with their scans' statuses.
		if it := got.Items[0]; it.Kind != ci.KindImage || it.Digest != digest || it.ImageRef != imageItem.ImageRef || it.ScanStatus != ci.ScanQueued {
			t.Errorf("first item: %+v", it)
		}
		if it := got.Items[1]; it.Kind != ci.KindCommit || it.Project != "app" || it.Commit != commitScan.CommitSHA || it.ScanStatus != ci.ScanSucceeded {
			t.Errorf("second item: %+v", it)
		}

		// Immutable: a version is made once; the product and the scans must exist.
		for _, tc := range []struct {
			r    reports.StoredRelease
			want error
		}{
			{reports.StoredRelease{ProductID: "com.example.app", Version: "1.0.0", Items: []reports.ReleaseItem{imageItem}}, reports.ErrConflict},
			{reports.StoredRelease{ProductID: "com.example.nope", Version: "2.0.0", Items: []reports.ReleaseItem{imageItem}}, reports.ErrNotFound},
			{reports.StoredRelease{ProductID: "com.example.app", Version: "2.0.0", Items: []reports.ReleaseItem{imageItem, {Kind: ci.KindCommit, Project: "app", Commit: "x", ScanID: "no-such-scan"}}}, reports.ErrNotFound},
			{reports.StoredRelease{ProductID: "com.example.app", Version: "2.0.0"}, reports.ErrInvalid},
		} {
			if _, err := db.CreateRelease(ctx, tc.r); !errors.Is(err, tc.want) {
				t.Errorf("create %s of %s: %v, want %v", tc.r.Version, tc.r.ProductID, err, tc.want)
			}
		}
		if _, err := db.GetRelease(ctx, "nope"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("get an unknown release: %v", err)
		}

		// Pages, oldest first; nothing of the refused creates is kept.
		page, next, err := db.ListReleases(ctx, "com.example.app", reports.Page{Limit: 1})
		if err != nil || len(page) != 1 || page[0].ID != r1.ID || len(page[0].Items) != 1 || next == "" {
			t.Fatalf("page 1: %+v %q %v", page, next, err)
		}
		if page, next, err = db.ListReleases(ctx, "com.example.app", reports.Page{Limit: 1, Cursor: next}); err != nil || len(page) != 1 || page[0].ID != r2.ID || next != "" {
			t.Fatalf("page 2: %+v %q %v", page, next, err)
		}
		if page, _, err = db.ListReleases(ctx, "com.example.nope", reports.Page{}); err != nil || len(page) != 0 {
			t.Errorf("releases of an unknown product: %+v %v", page, err)
		}

		// The latest ready release: 1.1.0 once its image scan succeeds.
		if l, err := db.LatestReadyRelease(ctx, "com.example.app"); err != nil || l.ID != r1.ID || len(l.Items) != 1 {
			t.Errorf("latest while 1.1.0 is pending: %+v %v, want 1.0.0", l, err)
		}
		if _, err := db.MarkRunning(ctx, imageScan.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSucceeded(ctx, imageScan.ID, ci.ScanResult{ResultKey: "k"}); err != nil {
			t.Fatal(err)
		}
		if l, err := db.LatestReadyRelease(ctx, "com.example.app"); err != nil || l.ID != r2.ID {
			t.Errorf("latest once 1.1.0's scans succeeded: %+v %v, want 1.1.0", l, err)
		}
		if _, err := db.LatestReadyRelease(ctx, "com.example.nope"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("latest of an unknown product: %v", err)
		}

		// A release keeps its scans: their project cannot be deleted.
		if err := db.DeleteProject(ctx, p.ID); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "1.0.0") {
			t.Errorf("delete a project with scans in releases: %v, want ErrConflict naming the release", err)
		}
		if _, err := db.GetRelease(ctx, r1.ID); err != nil {
			t.Error(err)
		}
	})
}
