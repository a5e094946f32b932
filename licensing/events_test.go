package licensing_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// hookSink is a webhook endpoint that checks signatures with the tenant's
// public key and records the events.
type hookSink struct {
	mu     sync.Mutex
	pub    string
	status int // answer; 0 means 204
	events []webhooks.Event
	bad    []string
}

// testSecret is the licensing secret of the tests (the server derives it
// from its seal key).
var testSecret = []byte("licensing-test-secret-32-bytes!!")

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	h.mu.Lock()
	defer h.mu.Unlock()
	pub, err := webhooks.ParsePublicKey(h.pub)
	if err == nil {
		err = webhooks.Verify(r.Header, body, webhooks.Keys{Public: pub}, time.Now())
	}
	if err != nil {
		h.bad = append(h.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.status != 0 {
		w.WriteHeader(h.status)
		return
	}
	var ev webhooks.Event
	json.Unmarshal(body, &ev)
	h.events = append(h.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookSink) snapshot() ([]webhooks.Event, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhooks.Event(nil), h.events...), append([]string(nil), h.bad...)
}

// A process that stops between the commit of an activation and the insert
// of its delivery jobs loses nothing: the next process's sweep queues them.
func TestWebhookDeliveriesSurviveARestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		if err := jobs.Migrate(ctx, db, nil); err != nil {
			t.Fatal(err)
		}
		cfg := licensing.DefaultConfig()
		cfg.Secret = testSecret
		cfg.Logger = storetest.Logger(t)
		// The first process has no queue: as if it died right after the commit.
		first, err := licensing.New(ctx, db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		tn, _ := first.CreateTenant(ctx, "Acme")
		first.CreateProduct(ctx, "app", "App")
		ent, err := first.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "app", Seats: 1})
		if err != nil {
			t.Fatal(err)
		}
		pub, err := first.WebhookKey(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		sink := &hookSink{pub: pub}
		srv := httptest.NewServer(sink)
		defer srv.Close()
		hook, err := first.CreateWebhook(ctx, licensing.NewWebhook{TenantID: tn.ID, URL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := first.Activate(ctx, licensing.ActivateRequest{TenantID: tn.ID, ProductID: "app", ActivationCode: ent.ActivationCode, SeatID: "a"}); err != nil {
			t.Fatal(err)
		}
		// A refused activation (no seat left) rolls back: no event.
		_, _, err = first.Activate(ctx, licensing.ActivateRequest{TenantID: tn.ID, ProductID: "app", ActivationCode: ent.ActivationCode, SeatID: "b"})
		if le, ok := licensing.AsError(err); !ok || le.Code != licensing.CodeNoSeats {
			t.Fatalf("second activation: %v, want NO_SEATS", err)
		}
		ds, _, err := first.WebhookDeliveries(ctx, tn.ID, hook.ID, "", 10)
		if err != nil || len(ds) != 2 {
			t.Fatalf("deliveries after the activations = %d, %v; want activated and seats_exhausted", len(ds), err)
		}

		// The next process: same database, a job queue, its sweep on start.
		second, err := licensing.New(ctx, db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := second.WebhookKey(ctx, tn.ID); again != pub {
			t.Fatalf("the tenant's key changed across processes: %s, then %s", pub, again)
		}
		q, err := jobs.New(db, &jobs.Config{Deliveries: second, PollInterval: 100 * time.Millisecond, Logger: storetest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		second.SetDeliveryQueue(q)
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q.Stop(ctx)
		}()
		deadline := time.Now().Add(60 * time.Second)
		for {
			evs, bad := sink.snapshot()
			if len(bad) > 0 {
				t.Fatalf("the endpoint refused deliveries: %v", bad)
			}
			if len(evs) == 2 {
				got := map[string]webhooks.Data{evs[0].Type: evs[0].Data, evs[1].Type: evs[1].Data}
				act, ex := got[webhooks.EventActivated], got[webhooks.EventSeatsExhausted]
				if act.EntitlementID != ent.ID || act.SeatID != "a" || act.ActivationID == "" || ex.Seats != 1 || ex.ActiveSeats != 1 {
					t.Errorf("events = %+v", evs)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the endpoint got %d events, want 2", len(evs))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// The last attempt's failure is final and recorded; the endpoint stays
// active (only 410 disables it).
func TestWebhookLastAttempt(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		cfg := licensing.DefaultConfig()
		cfg.Secret = testSecret
		cfg.Logger = storetest.Logger(t)
		svc, err := licensing.New(ctx, db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		tn, _ := svc.CreateTenant(ctx, "Acme")
		svc.CreateProduct(ctx, "app", "App")
		ent, _ := svc.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "app", Seats: 5})
		pub, _ := svc.WebhookKey(ctx, tn.ID)
		sink := &hookSink{pub: pub, status: http.StatusServiceUnavailable}
		srv := httptest.NewServer(sink)
		defer srv.Close()
		hook, err := svc.CreateWebhook(ctx, licensing.NewWebhook{TenantID: tn.ID, URL: srv.URL, Events: []string{webhooks.EventActivated}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Activate(ctx, licensing.ActivateRequest{TenantID: tn.ID, ProductID: "app", ActivationCode: ent.ActivationCode, SeatID: "a"}); err != nil {
			t.Fatal(err)
		}
		ds, _, _ := svc.WebhookDeliveries(ctx, tn.ID, hook.ID, "", 10)
		if len(ds) != 1 {
			t.Fatalf("deliveries = %d, want 1 (the filter drops the rest)", len(ds))
		}
		if err := svc.DeliverWebhook(ctx, ds[0].ID, false); err == nil {
			t.Error("DeliverWebhook(503, not last) = nil, want an error to retry")
		}
		if err := svc.DeliverWebhook(ctx, ds[0].ID, true); err != nil {
			t.Errorf("DeliverWebhook(503, last) = %v, want nil (final)", err)
		}
		ds, _, _ = svc.WebhookDeliveries(ctx, tn.ID, hook.ID, "", 10)
		if d := ds[0]; d.Status != licensing.DeliveryFailed || len(d.Attempts) != 2 || d.Attempts[1].StatusCode != 503 {
			t.Errorf("delivery after the last attempt = %+v, want failed with 2 attempts", d)
		}
		if w, _ := svc.GetWebhook(ctx, tn.ID, hook.ID); w.Status != licensing.StatusActive {
			t.Errorf("webhook status = %s, want active", w.Status)
		}
		if err := svc.DeliverWebhook(ctx, ds[0].ID, true); err != nil {
			t.Errorf("DeliverWebhook(already failed) = %v, want nil", err)
		}
	})
}
