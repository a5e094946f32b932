package store_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// commitScan enqueues a scan of the i'th commit on the branch.
func commitScan(t *testing.T, db *store.DB, p ci.Project, i int, branch string) ci.Scan {
	t.Helper()
	ctx := context.Background()
	sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: sha(i)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetScanBranch(ctx, sc.ID, branch); err != nil {
		t.Fatal(err)
	}
	sc, err = db.GetScan(ctx, sc.ID) // as stored, with its branch
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func observed(fps ...string) []ci.ObservedFinding {
	var out []ci.ObservedFinding
	for _, fp := range fps {
		out = append(out, ci.ObservedFinding{Fingerprint: fp, RuleID: "G" + fp[:3], Severity: "high", Confidence: "medium",
			File: "pkg/" + fp + ".go", Line: 3, Message: "finding " + fp})
	}
	return out
}

// state is a finding's sightings as (first, last, fixed) scan IDs.
type state struct{ First, Last, Fixed string }

func findingStates(t *testing.T, db *store.DB, projectID string) map[string]state {
	t.Helper()
	fs, next, err := db.ListFindings(context.Background(), ci.FindingFilter{ProjectID: projectID, Limit: ci.MaxFindingLimit})
	if err != nil || next != "" {
		t.Fatalf("ListFindings: %v (next %q)", err, next)
	}
	out := map[string]state{}
	for _, f := range fs {
		s := state{First: f.First.ScanID, Last: f.Last.ScanID}
		if f.Fixed != nil {
			s.Fixed = f.Fixed.ScanID
		}
		out[f.Fingerprint] = s
	}
	return out
}

func TestRecordFindings(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)

		// Five commits, scanned in creation order s1…s5: s1 and s2 on main,
		// s3 on a feature branch, s4 and s5 on main.
		s1 := commitScan(t, db, p, 1, "main")
		s2 := commitScan(t, db, p, 2, "main")
		s3 := commitScan(t, db, p, 3, "feature")
		s4 := commitScan(t, db, p, 4, "main")
		s5 := commitScan(t, db, p, 5, "main")

		// Recorded out of order: s2 (aaa, bbb) finishes before s1 (aaa).
		record := func(sc ci.Scan, fps ...string) {
			t.Helper()
			if err := db.RecordFindings(ctx, sc.ID, observed(fps...)); err != nil {
				t.Fatalf("RecordFindings(%s): %v", sc.CommitSHA[36:], err)
			}
		}
		record(s2, "aaa", "bbb")
		record(s1, "aaa")
		want := map[string]state{"aaa": {s1.ID, s2.ID, ""}, "bbb": {s2.ID, s2.ID, ""}}
		if diff := cmp.Diff(findingStates(t, db, p.ID), want); diff != "" {
			t.Fatalf("after s2, s1 (-got +want):\n%s", diff)
		}

		// s4 on main no longer has bbb: fixed in s4. A feature branch
		// scan lacking aaa fixes nothing; its new finding ccc is open.
		record(s4, "aaa")
		record(s3, "ccc")
		want = map[string]state{"aaa": {s1.ID, s4.ID, ""}, "bbb": {s2.ID, s2.ID, s4.ID}, "ccc": {s3.ID, s3.ID, s4.ID}}
		if diff := cmp.Diff(findingStates(t, db, p.ID), want); diff != "" {
			t.Fatalf("after s4, s3 (-got +want):\n%s", diff)
		}

		// Recording a scan again changes nothing.
		record(s4, "aaa")
		if diff := cmp.Diff(findingStates(t, db, p.ID), want); diff != "" {
			t.Fatalf("s4 recorded twice (-got +want):\n%s", diff)
		}

		// s5 brings bbb back: reopened, last seen in s5; aaa is fixed.
		record(s5, "bbb")
		want = map[string]state{"aaa": {s1.ID, s4.ID, s5.ID}, "bbb": {s2.ID, s5.ID, ""}, "ccc": {s3.ID, s3.ID, s4.ID}}
		if diff := cmp.Diff(findingStates(t, db, p.ID), want); diff != "" {
			t.Fatalf("after s5 (-got +want):\n%s", diff)
		}

		// The fix records the commit and the scan's time.
		fs, _, err := db.ListFindings(ctx, ci.FindingFilter{ProjectID: p.ID, Fixed: new(true)})
		if err != nil {
			t.Fatal(err)
		}
		var fixed []string
		for _, f := range fs {
			fixed = append(fixed, f.Fingerprint)
			if f.Fingerprint == "aaa" && (f.Fixed.Commit != s5.CommitSHA || !f.Fixed.At.Equal(s5.CreatedAt) || f.Last.Commit != s4.CommitSHA) {
				t.Errorf("aaa: fixed %+v, last %+v; want fixed in %s at %v, last seen in %s", f.Fixed, f.Last, s5.CommitSHA, s5.CreatedAt, s4.CommitSHA)
			}
		}
		sort.Strings(fixed)
		if diff := cmp.Diff(fixed, []string{"aaa", "ccc"}); diff != "" {
			t.Errorf("fixed findings (-got +want):\n%s", diff)
		}

		// Rescans and image scans are not recorded.
		if _, err := db.MarkRunning(ctx, s5.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSucceeded(ctx, s5.ID, ci.ScanResult{ResultKey: "k"}); err != nil {
			t.Fatal(err)
		}
		re, _, err := db.EnqueueRescan(ctx, s5)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RecordFindings(ctx, re.ID, observed("ddd")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RecordFindings of a rescan: %v, want ErrInvalid", err)
		}
		img, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest(1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RecordFindings(ctx, img.ID, observed("ddd")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RecordFindings of an image scan: %v, want ErrInvalid", err)
		}
	})
}

func TestListFindingsPages(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)
		var fps []string
		for i := range 7 {
			fps = append(fps, fmt.Sprintf("%03d", i))
		}
		if err := db.RecordFindings(ctx, commitScan(t, db, p, 1, "main").ID, observed(fps...)); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			fs, next, err := db.ListFindings(ctx, ci.FindingFilter{ProjectID: p.ID, Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, f := range fs {
				if seen[f.Fingerprint] {
					t.Errorf("%s on two pages", f.Fingerprint)
				}
				seen[f.Fingerprint] = true
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 7 || pages != 3 {
			t.Errorf("%d findings on %d pages, want 7 on 3", len(seen), pages)
		}
		if _, _, err := db.ListFindings(ctx, ci.FindingFilter{ProjectID: p.ID, Cursor: "not-a-cursor"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad cursor: %v, want ErrInvalid", err)
		}
	})
}

func TestWaiversAndGateState(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)
		main1 := commitScan(t, db, p, 1, "main")
		feat := commitScan(t, db, p, 2, "feature")

		st, err := db.GateState(ctx, feat.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st, ci.GateState{Branch: "feature"}); diff != "" {
			t.Errorf("gate state before anything (-got +want):\n%s", diff)
		}

		// A succeeded main scan becomes the baseline; a policy and a
		// waiver change bump their versions.
		if _, err := db.MarkRunning(ctx, main1.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MarkSucceeded(ctx, main1.ID, ci.ScanResult{ResultKey: "k"}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddPolicy(ctx, p.ID, "fail_on:\n  severity: low\n"); err != nil {
			t.Fatal(err)
		}
		expires := time.Now().UTC().AddDate(0, 1, 0)
		w, err := db.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: p.ID, Rule: "G404", Path: "cmd/**", Owner: "sec@example.com",
			Reason: "test data", Expires: expires, CreatedBy: "client-1"})
		if err != nil {
			t.Fatal(err)
		}
		st, err = db.GateState(ctx, feat.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st, ci.GateState{Branch: "feature", PolicyVersion: 1, WaiverVersion: 1, BaselineScanID: main1.ID}); diff != "" {
			t.Errorf("gate state (-got +want):\n%s", diff)
		}

		// The one-query lookups of the gate agree with GateState.
		g, err := db.CommitScanGate(ctx, p.Name, sha(2))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(g, ci.ScanGate{Scan: feat, Project: p, State: st}); diff != "" {
			t.Errorf("CommitScanGate (-got +want):\n%s", diff)
		}
		if _, err := db.CommitScanGate(ctx, "other", sha(2)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CommitScanGate of another project: %v, want ErrNotFound", err)
		}
		img, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest(7), ImageRef: "registry.example.com/app:7"})
		if err != nil {
			t.Fatal(err)
		}
		for _, get := range []func() (ci.ScanGate, error){
			func() (ci.ScanGate, error) { return db.ImageScanGate(ctx, digest(7)) },
			func() (ci.ScanGate, error) { return db.ImageRefScanGate(ctx, "registry.example.com/app:7") },
		} {
			g, err := get()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(g, ci.ScanGate{Scan: img}); diff != "" {
				t.Errorf("image scan gate (-got +want):\n%s", diff)
			}
		}

		got, err := db.ListWaivers(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		y, m, d := expires.Date()
		w.Expires = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if diff := cmp.Diff(got, []ci.ProjectWaiver{w}); diff != "" {
			t.Errorf("ListWaivers (-got +want):\n%s", diff)
		}
		if err := db.DeleteWaiver(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteWaiver(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete: %v, want ErrNotFound", err)
		}
		if st, err = db.GateState(ctx, feat.ID); err != nil || st.WaiverVersion != 2 {
			t.Errorf("waiver version after a delete: %d, %v; want 2", st.WaiverVersion, err)
		}
		if _, err := db.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: p.ID, Owner: "o", Reason: "r", Expires: expires}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("waiver without rule or fingerprint: %v, want ErrInvalid", err)
		}
		if _, err := db.CreateWaiver(ctx, ci.ProjectWaiver{ProjectID: "nope", Rule: "G1", Owner: "o", Reason: "r", Expires: expires}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("waiver of a missing project: %v, want ErrNotFound", err)
		}
		if _, err := db.GateState(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("gate state of a missing scan: %v, want ErrNotFound", err)
		}

		// Gate summaries: put, replace, get.
		if _, err := db.GetGateSummary(ctx, main1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing summary: %v, want ErrNotFound", err)
		}
		for _, s := range []string{`{"v":1}`, `{"v":2}`} {
			if err := db.PutGateSummary(ctx, main1.ID, []byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		if b, err := db.GetGateSummary(ctx, main1.ID); err != nil || string(b) != `{"v":2}` {
			t.Errorf("GetGateSummary = %s, %v", b, err)
		}
		if err := db.PutGateSummary(ctx, "nope", []byte("{}")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("summary of a missing scan: %v, want ErrNotFound", err)
		}
	})
}

// TestRecordFindingsConcurrent records six scans of main at once, in
// whatever order they get the database: the outcome is the one of
// recording them in order.
func TestRecordFindingsConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, p := setup(t, dialect)
		seen := [][]string{{"aaa"}, {"aaa", "bbb"}, {"aaa"}, {}, {"bbb"}, {"bbb"}}
		var scans []ci.Scan
		for i := range seen {
			scans = append(scans, commitScan(t, db, p, i+1, "main"))
		}
		var wg sync.WaitGroup
		for i := range seen {
			wg.Go(func() {
				if err := db.RecordFindings(ctx, scans[i].ID, observed(seen[i]...)); err != nil {
					t.Errorf("RecordFindings(%d): %v", i, err)
				}
			})
		}
		wg.Wait()
		// aaa: s1…s3, fixed in s4. bbb: s2, gone in s3 and s4, back in s5
		// and s6: open.
		want := map[string]state{"aaa": {scans[0].ID, scans[2].ID, scans[3].ID}, "bbb": {scans[1].ID, scans[5].ID, ""}}
		if diff := cmp.Diff(findingStates(t, db, p.ID), want); diff != "" {
			t.Errorf("(-got +want):\n%s", diff)
		}
	})
}
