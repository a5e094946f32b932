package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/publish"
)

// TestReportBundles stores and finds the records of built bundles: one
// per (release, tenant, ticket), the release and the tenant must exist.
func TestReportBundles(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := t.Context()
		db := storetest.Open(t, dialect)
		if _, err := db.CreateProduct(ctx, licensing.Product{ID: "com.example.app", Name: "App"}); err != nil {
			t.Fatal(err)
		}
		tn, err := db.CreateTenant(ctx, licensing.Tenant{Name: "Acme", Status: "active"})
		if err != nil {
			t.Fatal(err)
		}
		digest := "sha256:" + strings.Repeat("ab", 32)
		sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest, ImageRef: "registry.example.com/app:1"})
		if err != nil {
			t.Fatal(err)
		}
		rel, err := db.CreateRelease(ctx, reports.StoredRelease{ProductID: "com.example.app", Version: "1.0.0",
			Items: []reports.ReleaseItem{{Kind: ci.KindImage, ImageRef: "registry.example.com/app:1", Digest: digest, ScanID: sc.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		sum := strings.Repeat("cd", 32)
		b := publish.StoredBundle{
			Bundle: reports.Bundle{ReleaseID: rel.ID, ProductID: "com.example.app", ProductName: "App", Version: "1.0.0",
				TenantID: tn.ID, TenantName: "Acme", TicketID: "t-1", Ticket: "42", SHA256: sum, Size: 1234, KeyID: "kid",
				Files: []reports.BundleFile{{Name: "README.txt", Size: 10, SHA256: strings.Repeat("0", 64)}}},
			BlobKey: "sha256:" + sum,
		}
		got, err := db.CreateBundle(ctx, b)
		if err != nil || got.ID == "" || got.CreatedAt.IsZero() {
			t.Fatalf("create: %+v %v", got, err)
		}
		for name, read := range map[string]func() (publish.StoredBundle, error){
			"get":  func() (publish.StoredBundle, error) { return db.GetBundle(ctx, got.ID) },
			"find": func() (publish.StoredBundle, error) { return db.FindBundle(ctx, rel.ID, tn.ID, "t-1") },
		} {
			r, err := read()
			if err != nil || r.ID != got.ID || r.BlobKey != b.BlobKey || r.Ticket != "42" || r.TicketID != "t-1" || r.Size != 1234 ||
				r.TenantName != "Acme" || r.ProductName != "App" || len(r.Files) != 1 || r.Files[0] != b.Files[0] || !r.CreatedAt.Equal(got.CreatedAt) {
				t.Errorf("%s: %+v %v", name, r, err)
			}
		}

		// One per (release, tenant, ticket); a bundle without a ticket is
		// another.
		if _, err := db.CreateBundle(ctx, b); !errors.Is(err, reports.ErrConflict) {
			t.Errorf("the same bundle again: %v, want ErrConflict", err)
		}
		none := b
		none.TicketID, none.Ticket = "", publish.NoTicket
		if _, err := db.CreateBundle(ctx, none); err != nil {
			t.Errorf("without a ticket: %v", err)
		}
		if r, err := db.FindBundle(ctx, rel.ID, tn.ID, ""); err != nil || r.Ticket != publish.NoTicket {
			t.Errorf("find without a ticket: %+v %v", r, err)
		}

		for name, bad := range map[string]publish.StoredBundle{
			"an unknown release": {Bundle: reports.Bundle{ReleaseID: "nope", TenantID: tn.ID, SHA256: sum, Size: 1, KeyID: "k"}, BlobKey: b.BlobKey},
			"an unknown tenant":  {Bundle: reports.Bundle{ReleaseID: rel.ID, TenantID: "nope", SHA256: sum, Size: 1, KeyID: "k"}, BlobKey: b.BlobKey},
		} {
			if _, err := db.CreateBundle(ctx, bad); !errors.Is(err, reports.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", name, err)
			}
		}
		bad := b
		bad.BlobKey = "../etc/passwd"
		if _, err := db.CreateBundle(ctx, bad); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("a bad blob key: %v, want ErrInvalid", err)
		}
		if _, err := db.GetBundle(ctx, "nope"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("get an unknown bundle: %v", err)
		}
		if _, err := db.FindBundle(ctx, rel.ID, tn.ID, "t-2"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("find another ticket's: %v", err)
		}
	})
}

// TestHistoryScans lists the scans a gate history is drawn from: a
// project's commit scans, an image digest's and its repository's scans,
// in a time window, oldest first, the newest when there are too many.
func TestHistoryScans(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := t.Context()
		db := storetest.Open(t, dialect)
		p := projectWithEverything(t, db, "app") // a scan and its rescan
		other := projectWithEverything(t, db, "other")
		image := func(hex, ref string) ci.Scan {
			sc, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: "sha256:" + strings.Repeat(hex, 64), ImageRef: ref})
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}
		a := image("a", "registry.example.com/team/app:1")
		b := image("b", "registry.example.com/team/app@sha256:"+strings.Repeat("b", 64))
		c := image("c", "registry.example.com/team/app")
		image("d", "registry.example.com/team/app-other:1")
		image("e", "registry.example.com/team/app_x:1")
		e := image("f", "") // the digest alone

		from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		ids := func(q publish.HistoryQuery) []string {
			t.Helper()
			scans, err := db.HistoryScans(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, sc := range scans {
				out = append(out, sc.ID)
			}
			return out
		}
		commits := ids(publish.HistoryQuery{ProjectID: p.ID, From: from, To: to})
		if len(commits) != 2 || commits[0] >= commits[1] {
			t.Errorf("the project's commit scans: %q, want its scan and rescan, oldest first", commits)
		}
		if got := ids(publish.HistoryQuery{ProjectID: other.ID, From: from, To: to}); len(got) != 2 || got[0] == commits[0] {
			t.Errorf("the other project's: %q", got)
		}
		if got := ids(publish.HistoryQuery{ProjectID: p.ID, From: from, To: to, Limit: 1}); len(got) != 1 || got[0] != commits[1] {
			t.Errorf("limit 1: %q, want the newest, %s", got, commits[1])
		}
		if got := ids(publish.HistoryQuery{ProjectID: p.ID, From: from.Add(-time.Hour), To: from}); len(got) != 0 {
			t.Errorf("an earlier window: %q", got)
		}
		got := ids(publish.HistoryQuery{Digest: e.ImageDigest, Repository: "registry.example.com/team/app", From: from, To: to})
		if want := []string{a.ID, b.ID, c.ID, e.ID}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("the image's and its repository's scans: %q, want %q", got, want)
		}
		if got := ids(publish.HistoryQuery{Digest: a.ImageDigest, From: from, To: to}); len(got) != 1 || got[0] != a.ID {
			t.Errorf("the digest alone: %q", got)
		}
		if _, err := db.HistoryScans(ctx, publish.HistoryQuery{From: from, To: to}); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("no target: %v, want ErrInvalid", err)
		}
	})
}
