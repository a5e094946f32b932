package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// setup returns a fresh database with one project.
func setup(t *testing.T, dialect store.Dialect) (*store.DB, ci.Project) {
	t.Helper()
	db := storetest.Open(t, dialect)
	p, err := db.CreateProject(context.Background(), ci.Project{Name: "api", DefaultBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}

func sha(i int) string { return fmt.Sprintf("%040x", i) }

func digest(i int) string { return fmt.Sprintf("sha256:%064x", i) }

func TestEnqueueScanConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)

		for _, n := range []ci.NewScan{
			{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(1)},
			{Kind: ci.KindImage, ImageDigest: digest(1), ImageRef: "registry.example.com/app:1"},
		} {
			const callers = 50
			var (
				wg      sync.WaitGroup
				scans   = make([]ci.Scan, callers)
				created = make([]bool, callers)
				start   = make(chan struct{})
			)
			for i := range callers {
				wg.Go(func() {
					<-start
					var err error
					scans[i], created[i], err = db.EnqueueScan(ctx, n)
					if err != nil {
						t.Errorf("EnqueueScan #%d: %v", i, err)
					}
				})
			}
			close(start)
			wg.Wait()

			nCreated := 0
			for i := range callers {
				if created[i] {
					nCreated++
				}
				if scans[i].ID != scans[0].ID {
					t.Fatalf("%s: caller %d got scan %s, caller 0 got %s", n.Kind, i, scans[i].ID, scans[0].ID)
				}
			}
			if nCreated != 1 {
				t.Errorf("%s: %d callers were told they created the scan, want 1", n.Kind, nCreated)
			}
			all, _, err := db.ListScans(ctx, ci.ScanFilter{Limit: ci.MaxScanLimit})
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			for _, s := range all {
				if s.Kind == n.Kind {
					rows++
				}
			}
			if rows != 1 {
				t.Errorf("%s: %d rows, want 1", n.Kind, rows)
			}
		}
	})
}

func TestEnqueueScan(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)
		other, err := db.CreateProject(ctx, ci.Project{Name: "web"})
		if err != nil {
			t.Fatal(err)
		}

		s, created, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: strings.ToUpper(sha(0xabc))})
		if err != nil || !created {
			t.Fatalf("EnqueueScan() = %v, %v; want created", created, err)
		}
		want := ci.Scan{
			ID: s.ID, ProjectID: p.ID, Kind: ci.KindCommit, CommitSHA: sha(0xabc),
			Status: ci.ScanQueued, CreatedAt: s.CreatedAt,
		}
		if diff := cmp.Diff(want, s); diff != "" {
			t.Errorf("EnqueueScan() mismatch (-want +got):\n%s", diff)
		}
		got, err := db.GetScan(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s, got); diff != "" {
			t.Errorf("GetScan() mismatch (-want +got):\n%s", diff)
		}
		// The same commit in another project is another scan.
		s2, created, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: other.ID, CommitSHA: sha(0xabc)})
		if err != nil || !created || s2.ID == s.ID {
			t.Errorf("EnqueueScan(other project) = %s, %v, %v; want a new scan", s2.ID, created, err)
		}

		for _, tc := range []struct {
			name string
			in   ci.NewScan
			want error
		}{
			{"no kind", ci.NewScan{ProjectID: p.ID, CommitSHA: sha(1)}, store.ErrInvalid},
			{"short commit", ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: "abc123"}, store.ErrInvalid},
			{"commit without project", ci.NewScan{Kind: ci.KindCommit, CommitSHA: sha(1)}, store.ErrInvalid},
			{"commit with image", ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(1), ImageDigest: digest(1)}, store.ErrInvalid},
			{"bad digest", ci.NewScan{Kind: ci.KindImage, ImageDigest: "sha256:../../etc/passwd"}, store.ErrInvalid},
			{"unknown project", ci.NewScan{Kind: ci.KindCommit, ProjectID: "nope", CommitSHA: sha(1)}, store.ErrNotFound},
		} {
			if _, _, err := db.EnqueueScan(ctx, tc.in); !errors.Is(err, tc.want) {
				t.Errorf("EnqueueScan(%s) error = %v, want %v", tc.name, err, tc.want)
			}
		}
		if _, err := db.GetScan(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetScan(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

func TestListScans(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)

		const n = 23
		var ids []string // newest first
		for i := range n {
			s, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append([]string{s.ID}, ids...)
			// Images outside the project must not show in its list.
			if _, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest(i)}); err != nil {
				t.Fatal(err)
			}
		}

		var (
			got    []string
			cursor string
			pages  int
		)
		for {
			page, next, err := db.ListScans(ctx, ci.ScanFilter{ProjectID: p.ID, Limit: 5, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range page {
				got = append(got, s.ID)
			}
			if next == "" {
				break
			}
			if pages == 2 {
				// A scan created while paging is not seen on later pages.
				if _, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(1000)}); err != nil {
					t.Fatal(err)
				}
			}
			cursor = next
		}
		if diff := cmp.Diff(ids, got); diff != "" {
			t.Errorf("paged IDs mismatch (-want +got):\n%s", diff)
		}
		if pages != 5 {
			t.Errorf("%d pages, want 5", pages)
		}

		all, next, err := db.ListScans(ctx, ci.ScanFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2*n+1 || next != "" {
			t.Errorf("ListScans(all) = %d scans, next %q; want %d, \"\"", len(all), next, 2*n+1)
		}
		queued, _, err := db.ListScans(ctx, ci.ScanFilter{ProjectID: p.ID, Status: ci.ScanRunning})
		if err != nil || len(queued) != 0 {
			t.Errorf("ListScans(running) = %d scans, %v; want none", len(queued), err)
		}
		for _, c := range []string{"!!", "bm9wZQ"} { // not base64; base64 of "nope"
			if _, _, err := db.ListScans(ctx, ci.ScanFilter{Cursor: c}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("ListScans(cursor %q) error = %v, want ErrInvalid", c, err)
			}
		}
	})
}

func TestScanStatus(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)
		s, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(1)})
		if err != nil {
			t.Fatal(err)
		}

		if _, err := db.MarkSucceeded(ctx, s.ID, ci.ScanResult{}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("MarkSucceeded(queued) error = %v, want ErrConflict", err)
		}
		run, err := db.MarkRunning(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != ci.ScanRunning || run.Attempts != 1 || run.StartedAt.IsZero() || run.StartedAt.Location() != time.UTC {
			t.Errorf("MarkRunning() = %+v", run)
		}
		failed, err := db.MarkFailed(ctx, s.ID, "registry unreachable")
		if err != nil {
			t.Fatal(err)
		}
		if failed.Status != ci.ScanFailed || failed.Error != "registry unreachable" || failed.FinishedAt.IsZero() {
			t.Errorf("MarkFailed() = %+v", failed)
		}
		// A failed scan may be retried; the retry clears the error.
		run, err = db.MarkRunning(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Attempts != 2 || run.Error != "" || !run.FinishedAt.IsZero() {
			t.Errorf("MarkRunning(failed) = %+v", run)
		}
		if _, err := db.MarkRunning(ctx, s.ID); err != nil { // a retry after a crash
			t.Errorf("MarkRunning(running) error = %v", err)
		}

		res := ci.ScanResult{
			ResultKey:      "sha256:" + strings.Repeat("ab", 32),
			EngineVersions: map[string]string{"sast": "gosec 2.30.0", "sbom": "syft 1.57.1"},
			Timings:        map[string]time.Duration{"sast": 1500 * time.Millisecond, "checkout": time.Second},
		}
		done, err := db.MarkSucceeded(ctx, s.ID, res)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.GetScan(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(done, got); diff != "" {
			t.Errorf("GetScan() after MarkSucceeded mismatch (-want +got):\n%s", diff)
		}
		if got.Status != ci.ScanSucceeded || got.ResultKey != res.ResultKey ||
			!cmp.Equal(got.EngineVersions, res.EngineVersions) || !cmp.Equal(got.Timings, res.Timings) ||
			got.FinishedAt.Before(got.StartedAt) || got.StartedAt.Before(got.CreatedAt) {
			t.Errorf("after MarkSucceeded: %+v", got)
		}

		// Succeeded is final.
		for name, f := range map[string]func() error{
			"MarkRunning":   func() error { _, err := db.MarkRunning(ctx, s.ID); return err },
			"MarkFailed":    func() error { _, err := db.MarkFailed(ctx, s.ID, "x"); return err },
			"MarkSucceeded": func() error { _, err := db.MarkSucceeded(ctx, s.ID, res); return err },
		} {
			if err := f(); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s(succeeded) error = %v, want ErrConflict", name, err)
			}
		}
		if _, err := db.MarkRunning(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MarkRunning(unknown) error = %v, want ErrNotFound", err)
		}

		// A queued scan can fail without running (a bad reference).
		q, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest(1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkFailed(ctx, q.ID, ""); err != nil {
			t.Errorf("MarkFailed(queued) error = %v", err)
		}
	})
}

func TestRecordScanBranch(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		db, p := setup(t, dialect)
		ctx := context.Background()
		sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(1)})
		if err != nil {
			t.Fatal(err)
		}
		// Only a running scan's branch is the worker's to record.
		if err := db.RecordScanBranch(ctx, sc.ID, "main"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RecordScanBranch of a queued scan = %v, want ErrNotFound", err)
		}
		if err := db.SetScanBranch(ctx, sc.ID, "main"); err != nil { // what a caller once set
			t.Fatal(err)
		}
		if _, err := db.MarkRunning(ctx, sc.ID); err != nil {
			t.Fatal(err)
		}
		branch := func() string {
			t.Helper()
			got, err := db.GetScan(ctx, sc.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got.Branch
		}
		if err := db.RecordScanBranch(ctx, sc.ID, ""); err != nil || branch() != "" {
			t.Errorf("RecordScanBranch(\"\") = %v, branch %q; want the caller's branch replaced by none", err, branch())
		}
		if err := db.RecordScanBranch(ctx, sc.ID, "feature"); err != nil || branch() != "feature" {
			t.Errorf("RecordScanBranch(feature) = %v, branch %q", err, branch())
		}
		if _, err := db.MarkSucceeded(ctx, sc.ID, ci.ScanResult{ResultKey: "k"}); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordScanBranch(ctx, sc.ID, "main"); !errors.Is(err, store.ErrNotFound) || branch() != "feature" {
			t.Errorf("RecordScanBranch of a succeeded scan = %v, branch %q; want ErrNotFound and no change", err, branch())
		}
	})
}
