package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

func TestLicenseWebhooks(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		tn, err := db.CreateTenant(ctx, licensing.Tenant{Name: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		other, _ := db.CreateTenant(ctx, licensing.Tenant{Name: "other"})

		// One key per tenant: the first stored wins.
		k1, err := db.EnsureWebhookKey(ctx, licensing.WebhookKey{TenantID: tn.ID, PublicKey: "whpk_1", PrivateKey: "sealed1"})
		if err != nil {
			t.Fatal(err)
		}
		k2, err := db.EnsureWebhookKey(ctx, licensing.WebhookKey{TenantID: tn.ID, PublicKey: "whpk_2", PrivateKey: "sealed2"})
		if err != nil || k2.PublicKey != "whpk_1" || k2.PrivateKey != "sealed1" || !k2.CreatedAt.Equal(k1.CreatedAt) {
			t.Errorf("EnsureWebhookKey(again) = %+v, %v; want the first key", k2, err)
		}
		if _, err := db.EnsureWebhookKey(ctx, licensing.WebhookKey{TenantID: "nope", PublicKey: "p", PrivateKey: "s"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EnsureWebhookKey(unknown tenant) = %v, want ErrNotFound", err)
		}
		if _, err := db.GetWebhookKey(ctx, other.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetWebhookKey(no key yet) = %v, want ErrNotFound", err)
		}

		// Endpoints, at most max per tenant.
		w1, err := db.CreateLicenseWebhook(ctx, licensing.StoredWebhook{TenantID: tn.ID, URL: "https://a.example/hook"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		w2, err := db.CreateLicenseWebhook(ctx, licensing.StoredWebhook{TenantID: tn.ID, URL: "https://b.example/hook", Events: []string{"license.activated"}, Secret: "sealed"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateLicenseWebhook(ctx, licensing.StoredWebhook{TenantID: tn.ID, URL: "https://c.example/hook"}, 2); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateLicenseWebhook(third of 2) = %v, want ErrConflict", err)
		}
		if _, err := db.CreateLicenseWebhook(ctx, licensing.StoredWebhook{TenantID: "nope", URL: "https://c.example/hook"}, 2); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateLicenseWebhook(unknown tenant) = %v, want ErrNotFound", err)
		}
		ws, err := db.ListLicenseWebhooks(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ws, []licensing.StoredWebhook{w1, w2}); diff != "" {
			t.Errorf("ListLicenseWebhooks() mismatch (-got +want):\n%s", diff)
		}
		if !w1.Wants("license.deactivated") || w2.Wants("license.deactivated") || !w2.Wants("license.activated") {
			t.Error("Wants() does not follow the event filter")
		}
		if _, err := db.GetLicenseWebhook(ctx, other.ID, w1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetLicenseWebhook(another tenant's) = %v, want ErrNotFound", err)
		}

		// An event and its deliveries are written in the effect's transaction:
		// a rolled-back transaction leaves none.
		boom := errors.New("boom")
		err = db.InLicensingTx(ctx, func(tx licensing.Tx) error {
			if _, err := tx.InsertLicenseEvent(ctx, licensing.StoredEvent{ID: "msg_rolledback", TenantID: tn.ID, Type: "license.activated", Payload: "{}"}, []string{w1.ID}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		var ids []string
		err = db.InLicensingTx(ctx, func(tx licensing.Tx) error {
			active, err := tx.ActiveLicenseWebhooks(ctx, tn.ID)
			if err != nil || len(active) != 2 {
				t.Errorf("ActiveLicenseWebhooks() = %d, %v; want 2", len(active), err)
			}
			for i := range 3 {
				ev := licensing.StoredEvent{ID: "msg_" + string(rune('a'+i)), TenantID: tn.ID, Type: "license.activated", Payload: `{"n":1}`}
				ds, err := tx.InsertLicenseEvent(ctx, ev, []string{w1.ID, w2.ID})
				if err != nil {
					return err
				}
				ids = append(ids, ds...)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		unq, err := db.UnqueuedLicenseDeliveries(ctx, 100)
		if err != nil || len(unq) != 6 {
			t.Fatalf("UnqueuedLicenseDeliveries() = %v, %v; want the 6 committed", unq, err)
		}
		if err := db.MarkLicenseDeliveriesQueued(ctx, unq[:4], time.Now()); err != nil {
			t.Fatal(err)
		}
		if unq, _ = db.UnqueuedLicenseDeliveries(ctx, 100); len(unq) != 2 {
			t.Errorf("UnqueuedLicenseDeliveries() after marking 4 = %v, want 2", unq)
		}

		work, err := db.LicenseDeliveryWork(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if work.Event.ID != "msg_a" || work.Event.Payload != `{"n":1}` || work.Webhook.URL != w1.URL || work.Delivery.Status != licensing.DeliveryPending {
			t.Errorf("LicenseDeliveryWork() = %+v", work)
		}

		// Attempts: a failure keeps the delivery pending, a success ends it.
		at := time.Now().UTC().Truncate(time.Millisecond)
		dl, err := db.RecordLicenseAttempt(ctx, ids[0], licensing.StoredAttempt{At: at, Status: 500, Outcome: "failed", Error: "the endpoint answered 500", Duration: 12 * time.Millisecond}, licensing.DeliveryPending, "")
		if err != nil || dl.Attempts != 1 || dl.Status != licensing.DeliveryPending || dl.LastStatus != 500 {
			t.Errorf("RecordLicenseAttempt(500) = %+v, %v", dl, err)
		}
		dl, err = db.RecordLicenseAttempt(ctx, ids[0], licensing.StoredAttempt{At: at.Add(time.Second), Status: 204, Outcome: "delivered"}, licensing.DeliveryDelivered, "")
		if err != nil || dl.Attempts != 2 || dl.Status != licensing.DeliveryDelivered || !dl.DeliveredAt.Equal(at.Add(time.Second)) {
			t.Errorf("RecordLicenseAttempt(204) = %+v, %v", dl, err)
		}
		// A duplicate attempt of a finished delivery is logged, and changes nothing else.
		if dl, err := db.RecordLicenseAttempt(ctx, ids[0], licensing.StoredAttempt{At: at.Add(2 * time.Second), Status: 204, Outcome: "delivered"}, licensing.DeliveryDelivered, ""); !errors.Is(err, store.ErrConflict) ||
			dl.Attempts != 3 || dl.Status != licensing.DeliveryDelivered || !dl.DeliveredAt.Equal(at.Add(time.Second)) {
			t.Errorf("RecordLicenseAttempt(delivered already) = %+v, %v; want ErrConflict, 3 attempts, first delivery time", dl, err)
		}

		// 410 disables the endpoint and cancels its other pending deliveries.
		if _, err := db.RecordLicenseAttempt(ctx, ids[1], licensing.StoredAttempt{At: at, Status: 410, Outcome: "gone"}, licensing.DeliveryFailed, "410 Gone"); err != nil {
			t.Fatal(err)
		}
		got, _ := db.GetLicenseWebhook(ctx, tn.ID, w2.ID)
		if got.Status != licensing.WebhookDisabled || got.DisabledReason != "410 Gone" || got.DisabledAt.IsZero() {
			t.Errorf("webhook after 410 = %+v, want disabled", got)
		}
		ds, err := db.ListLicenseDeliveries(ctx, w2.ID, licensing.DeliveryCursor{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, d := range ds {
			statuses = append(statuses, d.Status)
		}
		if diff := cmp.Diff(statuses, []string{licensing.DeliveryCancelled, licensing.DeliveryCancelled, licensing.DeliveryFailed}); diff != "" {
			t.Errorf("statuses of w2's deliveries, newest first (-got +want):\n%s", diff)
		}

		// The list pages newest first and carries the attempts.
		page, err := db.ListLicenseDeliveries(ctx, w1.ID, licensing.DeliveryCursor{}, 2)
		if err != nil || len(page) != 2 {
			t.Fatalf("ListLicenseDeliveries(limit 2) = %d, %v", len(page), err)
		}
		last := page[1]
		rest, err := db.ListLicenseDeliveries(ctx, w1.ID, licensing.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}, 2)
		if err != nil || len(rest) != 1 || rest[0].ID != ids[0] {
			t.Fatalf("ListLicenseDeliveries(page 2) = %+v, %v; want the first delivery", rest, err)
		}
		want := []licensing.StoredAttempt{
			{Attempt: 1, At: at, Status: 500, Outcome: "failed", Error: "the endpoint answered 500", Duration: 12 * time.Millisecond},
			{Attempt: 2, At: at.Add(time.Second), Status: 204, Outcome: "delivered"},
			{Attempt: 3, At: at.Add(2 * time.Second), Status: 204, Outcome: "delivered"},
		}
		if diff := cmp.Diff(rest[0].AttemptLog, want); diff != "" {
			t.Errorf("attempts (-got +want):\n%s", diff)
		}

		// Pruning keeps events a delivery still waits for: msg_b and msg_c
		// wait at w1 (their w2 deliveries were cancelled).
		n, err := db.PruneLicenseEvents(ctx, time.Now().Add(time.Hour))
		if err != nil || n != 1 {
			t.Errorf("PruneLicenseEvents() = %d, %v; want 1 (msg_a, delivered)", n, err)
		}
		if _, err := db.LicenseDeliveryWork(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delivery of a pruned event: %v, want ErrNotFound", err)
		}
		if _, err := db.LicenseDeliveryWork(ctx, ids[2]); err != nil {
			t.Errorf("delivery of a waiting event: %v", err)
		}

		// Deleting an endpoint deletes its deliveries.
		if err := db.DeleteLicenseWebhook(ctx, tn.ID, w1.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.LicenseDeliveryWork(ctx, ids[2]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LicenseDeliveryWork(deleted endpoint) = %v, want ErrNotFound", err)
		}
		if err := db.DeleteLicenseWebhook(ctx, tn.ID, w1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteLicenseWebhook(again) = %v, want ErrNotFound", err)
		}
	})
}

func TestLicenseWebhookSweeps(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		tn, _ := db.CreateTenant(ctx, licensing.Tenant{Name: "acme"})
		quiet, _ := db.CreateTenant(ctx, licensing.Tenant{Name: "no webhooks"})
		p, _ := db.CreateProduct(ctx, licensing.Product{Name: "app"})
		now := time.Now().UTC().Truncate(time.Second)
		ent := func(tenant string, expires time.Time, code string) licensing.StoredEntitlement {
			e, err := db.CreateEntitlement(ctx, licensing.StoredEntitlement{TenantID: tenant, ProductID: p.ID, Seats: 3, ExpiresAt: expires, Lease: time.Hour, CodeHash: code})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		soon := ent(tn.ID, now.Add(48*time.Hour), "c1")
		ent(tn.ID, now.Add(60*24*time.Hour), "c2") // not within the window
		ent(quiet.ID, now.Add(24*time.Hour), "c3") // no webhook
		if _, err := db.CreateLicenseWebhook(ctx, licensing.StoredWebhook{TenantID: tn.ID, URL: "https://a.example/hook"}, 10); err != nil {
			t.Fatal(err)
		}

		es, err := db.ExpiringEntitlements(ctx, now, now.Add(7*24*time.Hour), 100)
		if err != nil || len(es) != 1 || es[0].ID != soon.ID {
			t.Fatalf("ExpiringEntitlements() = %+v, %v; want only %s", es, err, soon.ID)
		}
		var added []bool
		for range 2 {
			err = db.InLicensingTx(ctx, func(tx licensing.Tx) error {
				ok, err := tx.AddExpiryNotice(ctx, soon.ID, soon.ExpiresAt, now)
				added = append(added, ok)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(added, []bool{true, false}); diff != "" {
			t.Errorf("AddExpiryNotice() twice (-got +want):\n%s", diff)
		}
		if es, _ := db.ExpiringEntitlements(ctx, now, now.Add(7*24*time.Hour), 100); len(es) != 0 {
			t.Errorf("ExpiringEntitlements() after the notice = %d, want 0", len(es))
		}

		// A lease that ran out is found and expired once.
		err = db.InLicensingTx(ctx, func(tx licensing.Tx) error {
			for i, lease := range []time.Time{now.Add(-time.Minute), now.Add(time.Hour)} {
				_, err := tx.InsertActivation(ctx, licensing.StoredActivation{EntitlementID: soon.ID, SeatID: string(rune('a' + i)), TokenJTI: "j", NonceHash: "n",
					LeaseExpiresAt: lease, Status: licensing.StatusActive, CreatedAt: now, RefreshedAt: now})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		lapsed, err := db.LapsedLeaseEntitlements(ctx, now, 100)
		if err != nil || len(lapsed) != 1 || lapsed[0] != soon.ID {
			t.Fatalf("LapsedLeaseEntitlements() = %v, %v", lapsed, err)
		}
		var expired []licensing.StoredActivation
		err = db.InLicensingTx(ctx, func(tx licensing.Tx) error {
			expired, err = tx.ExpireLapsedLeases(ctx, soon.ID, now)
			return err
		})
		if err != nil || len(expired) != 1 || expired[0].SeatID != "a" || expired[0].Status != licensing.StatusExpired {
			t.Errorf("ExpireLapsedLeases() = %+v, %v; want seat a, expired", expired, err)
		}
		if lapsed, _ := db.LapsedLeaseEntitlements(ctx, now, 100); len(lapsed) != 0 {
			t.Errorf("LapsedLeaseEntitlements() after expiry = %v", lapsed)
		}
	})
}
