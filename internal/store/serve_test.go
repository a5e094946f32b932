package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

func TestServeLookups(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p, err := db.CreateProject(ctx, ci.Project{Name: "app", DefaultBranch: "main"})
		if err != nil {
			t.Fatal(err)
		}
		c1, c2 := strings.Repeat("a", 40), strings.Repeat("b", 40)
		s1, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: c1})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetScanBranch(ctx, s1.ID, "main"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetScanBranch(ctx, s1.ID, "other"); err != nil { // the first branch stays
			t.Fatal(err)
		}
		if s, err := db.GetScan(ctx, s1.ID); err != nil || s.Branch != "main" {
			t.Fatalf("branch of the scan = %q, %v; want main", s.Branch, err)
		}
		if _, err := db.LatestBranchScan(ctx, p.ID, "main", c2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LatestBranchScan of a queued scan: %v, want ErrNotFound", err)
		}
		if _, err := db.MarkRunning(ctx, s1.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSucceeded(ctx, s1.ID, ci.ScanResult{}); err != nil {
			t.Fatal(err)
		}
		got, err := db.LatestBranchScan(ctx, p.ID, "main", c2)
		if err != nil || got.ID != s1.ID {
			t.Fatalf("LatestBranchScan = %v, %v; want %s", got.ID, err, s1.ID)
		}
		if _, err := db.LatestBranchScan(ctx, p.ID, "main", c1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LatestBranchScan excluding its own commit: %v, want ErrNotFound", err)
		}
		if got, err := db.FindCommitScan(ctx, p.ID, strings.ToUpper(c1)); err != nil || got.ID != s1.ID {
			t.Fatalf("FindCommitScan = %v, %v", got.ID, err)
		}
		dg := "sha256:" + strings.Repeat("c", 64)
		img, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: dg, ImageRef: "reg.example/app:1"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := db.FindImageScan(ctx, dg); err != nil || got.ID != img.ID {
			t.Fatalf("FindImageScan = %v, %v", got.ID, err)
		}
		if got, err := db.LatestImageScanByRef(ctx, "reg.example/app:1"); err != nil || got.ID != img.ID {
			t.Fatalf("LatestImageScanByRef = %v, %v", got.ID, err)
		}
		if _, err := db.LatestImageScanByRef(ctx, "reg.example/app:2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LatestImageScanByRef of an unknown ref: %v", err)
		}
		if n, err := db.CountScans(ctx, ci.ScanQueued); err != nil || n != 1 {
			t.Fatalf("CountScans(queued) = %d, %v; want 1", n, err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestScannedCommits(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		p, err := db.CreateProject(ctx, ci.Project{Name: "app", DefaultBranch: "main"})
		if err != nil {
			t.Fatal(err)
		}
		c1 := strings.Repeat("a", 40)
		if _, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: c1}); err != nil {
			t.Fatal(err)
		}
		// Short SHAs: a prefix finds the scanned commits it starts, in
		// this project only; LIKE's wildcards are not hex, so refused.
		ab := "ab" + strings.Repeat("0", 38)
		if _, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: ab}); err != nil {
			t.Fatal(err)
		}
		other, err := db.CreateProject(ctx, ci.Project{Name: "other", DefaultBranch: "main"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: other.ID, CommitSHA: "abc" + strings.Repeat("1", 37)}); err != nil {
			t.Fatal(err)
		}
		for prefix, want := range map[string][]string{"aaaaaaa": {c1}, "a": {c1, ab}, "ab": {ab}, "abc": nil, "c": nil, c1: {c1}} {
			got, err := db.ScannedCommits(ctx, p.ID, prefix, 5)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("ScannedCommits(%q) = %v, %v; want %v", prefix, got, err, want)
			}
		}
		if got, err := db.ScannedCommits(ctx, p.ID, "a", 1); err != nil || len(got) != 1 {
			t.Errorf("ScannedCommits limit 1 = %v, %v", got, err)
		}
		for _, bad := range []string{"", "%", "a_", "ABC"} {
			if _, err := db.ScannedCommits(ctx, p.ID, bad, 5); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("ScannedCommits(%q) = %v, want ErrInvalid", bad, err)
			}
		}

	})
}
