package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
)

// The links' queries on both databases: writes in a ticket's
// transaction, the lookup by token hash, download grants by client
// address and time, the expiry sweep's due links, paging.
func TestReportLinks(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		tn, err := db.CreateTenant(ctx, licensing.Tenant{Name: "Acme", Status: licensing.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var tk reports.Ticket
		inTx := func(fn func(reports.LinkTx) error) error { return db.InLinkTx(ctx, fn) }
		if err := inTx(func(tx reports.LinkTx) error {
			tk, err = tx.InsertTicket(ctx, reports.Ticket{TenantID: tn.ID, Products: []string{"app"}, Subject: "s", Message: "m",
				Status: reports.TicketApproved, CreatedBy: "c", CreatedAt: t0})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		link := func(hash string, expires time.Time) reports.StoredLink {
			return reports.StoredLink{ID: uuid.Must(uuid.NewV7()).String(), TokenHash: hash, TicketID: tk.ID, TicketNumber: tk.Number,
				TenantID: tn.ID, BundleID: "b1", BundleSHA256: strings.Repeat("ab", 32), ProductID: "app", Version: "1.0",
				ExpiresAt: expires, MaxDownloads: 3, CreatedBy: "staff", CreatedAt: t0}
		}
		l1, l2 := link("hash-1", t0.Add(time.Hour)), link("hash-2", t0.Add(2*time.Hour))
		for _, l := range []reports.StoredLink{l1, l2} {
			if err := inTx(func(tx reports.LinkTx) error { return tx.InsertLink(ctx, l) }); err != nil {
				t.Fatal(err)
			}
		}
		// A token hash is unique; the ticket must exist.
		dup := link("hash-1", t0)
		if err := inTx(func(tx reports.LinkTx) error { return tx.InsertLink(ctx, dup) }); !errors.Is(err, reports.ErrConflict) {
			t.Errorf("a second link with hash-1: %v", err)
		}
		orphan := link("hash-3", t0)
		orphan.TicketID = uuid.NewString()
		if err := inTx(func(tx reports.LinkTx) error { return tx.InsertLink(ctx, orphan) }); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("a link of no ticket: %v", err)
		}

		got, err := db.LinkByTokenHash(ctx, "hash-2")
		if err != nil || got.ID != l2.ID || !got.ExpiresAt.Equal(l2.ExpiresAt) || got.BundleSHA256 != l2.BundleSHA256 || got.TicketNumber != tk.Number {
			t.Errorf("LinkByTokenHash = %+v, %v", got, err)
		}
		if _, err := db.LinkByTokenHash(ctx, "hash-9"); !errors.Is(err, reports.ErrNotFound) || strings.Contains(err.Error(), "hash-9") {
			t.Errorf("an unknown hash: %v (must not name it)", err)
		}

		// Changes: downloads, revocation, recorded expiry, replacement.
		err = inTx(func(tx reports.LinkTx) error {
			l, err := tx.LockLink(ctx, l1.ID)
			if err != nil {
				return err
			}
			l.Downloads, l.RevokedAt, l.RevokedBy, l.RevokeReason, l.ReplacedBy = 2, t0.Add(time.Minute), "staff", "why", l2.ID
			return tx.UpdateLink(ctx, l)
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err = db.GetLink(ctx, l1.ID)
		if err != nil || got.Downloads != 2 || !got.RevokedAt.Equal(t0.Add(time.Minute)) || got.RevokeReason != "why" || got.ReplacedBy != l2.ID || !got.ExpiredAt.IsZero() {
			t.Errorf("after the update: %+v, %v", got, err)
		}
		if err := inTx(func(tx reports.LinkTx) error { _, err := tx.LockLink(ctx, uuid.NewString()); return err }); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("lock an unknown link: %v", err)
		}

		// Due links: not revoked, expiry passed, not recorded.
		due, err := db.DueLinks(ctx, t0.Add(3*time.Hour), 10)
		if err != nil || len(due) != 1 || due[0].ID != l2.ID {
			t.Errorf("DueLinks = %v, %v; want l2 only (l1 is revoked)", due, err)
		}
		if due, err := db.DueLinks(ctx, t0.Add(time.Hour), 10); err != nil || len(due) != 0 {
			t.Errorf("DueLinks before l2's expiry = %v, %v", due, err)
		}

		// Access log and download grants: a download served (200/206) to
		// the address since the time asked.
		access := func(at time.Time, addr, kind string, status int) reports.LinkAccess {
			return reports.LinkAccess{ID: uuid.Must(uuid.NewV7()).String(), LinkID: l2.ID, At: at, Kind: kind, ClientAddress: addr,
				UserAgent: "ua", Status: status, Counted: status == 200}
		}
		entries := []reports.LinkAccess{
			access(t0.Add(time.Minute), "192.0.2.1", reports.AccessDownload, 200),
			access(t0.Add(2*time.Minute), "192.0.2.2", reports.AccessView, 200),
			access(t0.Add(3*time.Minute), "192.0.2.3", reports.AccessDownload, 410),
			access(t0.Add(4*time.Minute), "192.0.2.1", reports.AccessDownload, 206),
		}
		for _, a := range entries {
			if err := inTx(func(tx reports.LinkTx) error { return tx.InsertLinkAccess(ctx, a) }); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			addr  string
			since time.Time
			want  bool
		}{
			{"192.0.2.1", t0, true},
			{"192.0.2.1", t0.Add(4 * time.Minute), true},
			{"192.0.2.1", t0.Add(5 * time.Minute), false},
			{"192.0.2.2", t0, false}, // a view grants nothing
			{"192.0.2.3", t0, false}, // nor a refusal
		} {
			var got bool
			if err := inTx(func(tx reports.LinkTx) (err error) {
				got, err = tx.DownloadGranted(ctx, l2.ID, c.addr, c.since)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("DownloadGranted(%s, since %s) = %v, want %v", c.addr, c.since.Format(time.TimeOnly), got, c.want)
			}
		}
		if err := db.FinishLinkAccess(ctx, entries[0].ID, 200, 12345); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishLinkAccess(ctx, uuid.NewString(), 200, 1); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("finish an unknown access: %v", err)
		}
		page, next, err := db.ListLinkAccess(ctx, l2.ID, reports.Page{Limit: 3})
		if err != nil || len(page) != 3 || next == "" || page[0].Bytes != 12345 || !page[0].Counted || page[1].Kind != reports.AccessView ||
			!page[0].At.Equal(t0.Add(time.Minute)) || page[0].UserAgent != "ua" {
			t.Fatalf("access page 1 = %+v, %q, %v", page, next, err)
		}
		page, next, err = db.ListLinkAccess(ctx, l2.ID, reports.Page{Cursor: next, Limit: 3})
		if err != nil || len(page) != 1 || next != "" || page[0].Status != 206 || page[0].Counted {
			t.Errorf("access page 2 = %+v, %q, %v", page, next, err)
		}

		// Lists by ticket and tenant, oldest first.
		ls, _, err := db.ListLinks(ctx, reports.StoredLinkQuery{TicketID: tk.ID})
		if err != nil || len(ls) != 2 || ls[0].ID != l1.ID {
			t.Errorf("ListLinks by ticket = %v, %v", ls, err)
		}
		if ls, _, err := db.ListLinks(ctx, reports.StoredLinkQuery{TenantID: "tnt_other"}); err != nil || len(ls) != 0 {
			t.Errorf("ListLinks of another tenant = %v, %v", ls, err)
		}
	})
}
