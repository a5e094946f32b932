package server_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	licapi "github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// hookSetup is setup with fast delivery retries and sweeps.
func hookSetup(t *testing.T, dialect store.Dialect) *env {
	t.Helper()
	e, _ := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) {
		c.Jobs.Workers = 2
		c.Jobs.PollInterval = 100 * time.Millisecond
		c.Jobs.DeliveryBackoff = func(int) time.Duration { return 200 * time.Millisecond }
		c.Jobs.SweepInterval = 300 * time.Millisecond
		lcfg := licensing.DefaultConfig()
		lcfg.Webhooks.Timeout = 5 * time.Second
		c.Licensing = &lcfg
	}})
	return e
}

// receiver is a tenant's webhook endpoint: it checks every request with
// the tenant's public key only (and the HMAC secret when it has one) and
// answers the statuses it is told to, then 204.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	pub    string
	secret string
	answer []int // statuses of the next requests
	got    []webhooks.Event
	ids    []string
	calls  int
	bad    []string
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	r := &receiver{t: t, answer: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	pub, err := webhooks.ParsePublicKey(rc.pub)
	if err != nil {
		rc.bad = append(rc.bad, "no public key yet")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	// The tenant's public key alone verifies the delivery.
	if err := webhooks.Verify(r.Header, body, webhooks.Keys{Public: pub}, time.Now()); err != nil {
		rc.bad = append(rc.bad, "v1a: "+err.Error())
	}
	if rc.secret != "" {
		sec, err := webhooks.ParseSecret(rc.secret)
		if err != nil || webhooks.Verify(r.Header, body, webhooks.Keys{Secret: sec}, time.Now()) != nil {
			rc.bad = append(rc.bad, "v1 signature does not verify")
		}
	}
	if len(rc.answer) > 0 {
		code := rc.answer[0]
		rc.answer = rc.answer[1:]
		w.WriteHeader(code)
		return
	}
	var ev webhooks.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.bad = append(rc.bad, "payload: "+err.Error())
	}
	for _, secret := range []string{"activation_code", "access_token", "fingerprint"} {
		if strings.Contains(string(body), secret) {
			rc.bad = append(rc.bad, "payload carries "+secret)
		}
	}
	rc.got = append(rc.got, ev)
	rc.ids = append(rc.ids, r.Header.Get(webhooks.HeaderID))
	w.WriteHeader(http.StatusNoContent)
}

// wait waits until the receiver accepted n events and returns them.
func (rc *receiver) wait(n int) []webhooks.Event {
	rc.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rc.mu.Lock()
		got, bad := slices.Clone(rc.got), slices.Clone(rc.bad)
		rc.mu.Unlock()
		if len(bad) > 0 {
			rc.t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("receiver got %d events, want %d: %+v", len(got), n, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func types(evs []webhooks.Event) []string {
	var out []string
	for _, e := range evs {
		s := e.Type
		if e.Data.Reason != "" {
			s += "/" + e.Data.Reason
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

type deliveryJSON struct {
	ID        string
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Status    string
	Attempts  []struct {
		Attempt    int
		StatusCode int `json:"status_code"`
		Outcome    string
	}
}

func TestLicenseWebhooks(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := hookSetup(t, dialect)
		var tenant, product struct{ ID string }
		e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant)
		e.do("POST", "/api/v1/products", map[string]any{"name": "App"}, &product)
		var ent, short entitlementJSON
		code := e.do("POST", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 2,
			"expires_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)}, &ent)
		if code != http.StatusCreated {
			t.Fatalf("create entitlement: %d", code)
		}
		e.do("POST", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 5, "lease_seconds": 1}, &short)

		var key struct {
			TenantID  string `json:"tenant_id"`
			Algorithm string
			Scheme    string
			PublicKey string `json:"public_key"`
		}
		if code := e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhook-key", nil, &key); code != 200 || key.Scheme != "v1a" || !strings.HasPrefix(key.PublicKey, "whpk_") {
			t.Fatalf("webhook key: %d %+v", code, key)
		}
		var again struct {
			PublicKey string `json:"public_key"`
		}
		if e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhook-key", nil, &again); again.PublicKey != key.PublicKey {
			t.Errorf("webhook key changed: %s then %s", key.PublicKey, again.PublicKey)
		}
		if code := e.do("GET", "/api/v1/tenants/nope/webhook-key", nil, nil); code != http.StatusNotFound {
			t.Errorf("webhook key of an unknown tenant: %d, want 404", code)
		}

		// Validation and scopes.
		var apiErr struct{ Code, Message string }
		for _, bad := range []map[string]any{
			{"url": "http://hooks.example.com/x"},
			{"url": "https://user:pw@hooks.example.com/x"},
			{"url": "ftp://hooks.example.com/x"},
			{"url": "https://hooks.example.com/x", "events": []string{"license.bogus"}},
		} {
			if code := e.do("POST", "/api/v1/tenants/"+tenant.ID+"/webhooks", bad, &apiErr); code != 400 || apiErr.Code != "INVALID_FIELD" {
				t.Errorf("create webhook %v: %d %+v, want 400 INVALID_FIELD", bad, code, apiErr)
			}
		}
		reader := e.clientWith(server.ScopeLicensingRead)
		if code := e.doWith(reader, "POST", "/api/v1/tenants/"+tenant.ID+"/webhooks", map[string]any{"url": "https://hooks.example.com/x"}, nil); code != http.StatusForbidden {
			t.Errorf("create webhook with licensing:read: %d, want 403", code)
		}

		// Endpoint A is down twice, then up; it has an HMAC secret too.
		// Endpoint B wants activations only and answers 410 Gone.
		a := newReceiver(t, 500, 500)
		b := newReceiver(t, 410, 410, 410, 410, 410, 410, 410, 410) // gone for good
		var hookA, hookB struct {
			ID, URL, Status, Secret string
			HMAC                    bool
			Events                  []string
		}
		if code := e.do("POST", "/api/v1/tenants/"+tenant.ID+"/webhooks", map[string]any{"url": a.srv.URL + "/hooks?token=t0k", "hmac": true}, &hookA); code != http.StatusCreated || !hookA.HMAC || !strings.HasPrefix(hookA.Secret, "whsec_") {
			t.Fatalf("create webhook A: %d %+v", code, hookA)
		}
		if code := e.do("POST", "/api/v1/tenants/"+tenant.ID+"/webhooks", map[string]any{"url": b.srv.URL, "events": []string{"license.activated"}}, &hookB); code != http.StatusCreated || hookB.Secret != "" {
			t.Fatalf("create webhook B: %d %+v", code, hookB)
		}
		a.mu.Lock()
		a.pub, a.secret = key.PublicKey, hookA.Secret
		a.mu.Unlock()
		b.mu.Lock()
		b.pub = key.PublicKey
		b.mu.Unlock()
		var list struct {
			Webhooks []struct {
				ID, Secret string
				HMAC       bool
			}
		}
		if e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks", nil, &list); len(list.Webhooks) != 2 || list.Webhooks[0].Secret != "" || !list.Webhooks[0].HMAC {
			t.Errorf("list webhooks: %+v (the secret is shown once only)", list)
		}

		// Real activations through the Licensing API.
		activate := func(entID, code, seat string) string {
			hdr := map[string]string{licapi.HeaderTenant: tenant.ID, licapi.HeaderProduct: product.ID}
			status, _, body := e.licensingCall("POST", "/api/v1/activate", hdr, map[string]string{"activation_code": code, "seat_id": seat})
			var g struct {
				AccessToken string `json:"access_token"`
			}
			if status != 200 || json.Unmarshal(body, &g) != nil {
				t.Fatalf("activate %s: %d %s", seat, status, body)
			}
			return g.AccessToken
		}
		tok1 := activate(ent.ID, ent.ActivationCode, "host-1")
		activate(ent.ID, ent.ActivationCode, "host-2") // the last seat
		if status, _, _ := e.licensingCall("DELETE", "/api/v1/activation", map[string]string{licapi.HeaderTenant: tenant.ID, "Authorization": "Bearer " + tok1}, nil); status != http.StatusNoContent && status != http.StatusOK {
			t.Fatalf("deactivate: %d", status)
		}
		activate(short.ID, short.ActivationCode, "short-lease") // its 1s lease lapses

		want := []string{
			"license.activated", "license.activated", "license.activated",
			"license.deactivated/deactivated", "license.deactivated/lease_expired",
			"license.entitlement_expiring", "license.seats_exhausted",
		}
		got := a.wait(len(want))
		if diff := strings.Join(types(got), ","); diff != strings.Join(want, ",") {
			t.Errorf("events at A:\n got %s\nwant %s", diff, strings.Join(want, ","))
		}
		for _, ev := range got {
			if ev.Data.TenantID != tenant.ID || ev.Data.ProductID != product.ID || ev.Timestamp.IsZero() {
				t.Errorf("event %+v: wrong tenant, product or time", ev)
			}
			switch ev.Type {
			case webhooks.EventSeatsExhausted:
				if ev.Data.EntitlementID != ent.ID || ev.Data.Seats != 2 || ev.Data.ActiveSeats != 2 {
					t.Errorf("seats_exhausted data: %+v", ev.Data)
				}
			case webhooks.EventEntitlementExpiring:
				if ev.Data.EntitlementID != ent.ID || ev.Data.ExpiresAt.IsZero() {
					t.Errorf("entitlement_expiring data: %+v", ev.Data)
				}
			case webhooks.EventDeactivated:
				if ev.Data.Reason == webhooks.ReasonLeaseExpired && (ev.Data.EntitlementID != short.ID || ev.Data.SeatID != "short-lease") {
					t.Errorf("lease_expired data: %+v", ev.Data)
				}
			}
		}

		// The deliveries of A: all delivered, after the two 500s the
		// endpoint answered while it was down.
		var dl struct {
			Deliveries []deliveryJSON
			NextCursor string `json:"next_cursor"`
		}
		// The receiver has every event; the last attempts are recorded as
		// their answers come back: wait until none is pending.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			dl.Deliveries = nil
			if code := e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookA.ID+"/deliveries?limit=200", nil, &dl); code != 200 || len(dl.Deliveries) != len(want) {
				t.Fatalf("deliveries of A: %d, %d of %d", code, len(dl.Deliveries), len(want))
			}
			if !slices.ContainsFunc(dl.Deliveries, func(d deliveryJSON) bool { return d.Status == "pending" }) || time.Now().After(deadline) {
				break
			}
		}
		for _, d := range dl.Deliveries {
			if len(d.Attempts) == 0 {
				t.Errorf("delivery %+v has no attempt recorded", d)
				continue
			}
			last := d.Attempts[len(d.Attempts)-1]
			if d.Status != "delivered" || last.StatusCode != 204 || last.Outcome != "delivered" {
				t.Errorf("delivery %+v not delivered", d)
			}
		}
		if n := countRetries(dl.Deliveries); n != 2 {
			t.Errorf("%d attempts recorded with status 500, want the endpoint's 2: %+v", n, dl.Deliveries)
		}
		var page struct {
			Deliveries []deliveryJSON
			NextCursor string `json:"next_cursor"`
		}
		e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookA.ID+"/deliveries?limit=4", nil, &page)
		if len(page.Deliveries) != 4 || page.NextCursor == "" {
			t.Fatalf("first page: %d, cursor %q", len(page.Deliveries), page.NextCursor)
		}
		var rest struct{ Deliveries []deliveryJSON }
		e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookA.ID+"/deliveries?limit=4&cursor="+page.NextCursor, nil, &rest)
		if len(rest.Deliveries) != len(want)-4 || rest.Deliveries[0].ID == page.Deliveries[3].ID {
			t.Errorf("second page: %d deliveries", len(rest.Deliveries))
		}

		// B answered 410: disabled. Deliveries already in flight got 410
		// too; the rest were cancelled; no request followed.
		var hb struct {
			Status         string
			DisabledReason string `json:"disabled_reason"`
		}
		e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookB.ID, nil, &hb)
		if hb.Status != "disabled" || !strings.Contains(hb.DisabledReason, "410") {
			t.Errorf("webhook B after 410: %+v", hb)
		}
		deliveriesOfB := func() map[string]int {
			var dlB struct{ Deliveries []deliveryJSON }
			e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookB.ID+"/deliveries", nil, &dlB)
			n := map[string]int{}
			for _, d := range dlB.Deliveries {
				if d.EventType != webhooks.EventActivated {
					t.Errorf("B got a %s delivery despite its filter", d.EventType)
				}
				n[d.Status]++
				n["attempts"] += len(d.Attempts)
			}
			return n
		}
		// B's requests still in flight when it was disabled record their
		// attempts as they return: wait for every request to be recorded.
		var (
			before map[string]int
			calls  int
		)
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			before = deliveriesOfB()
			b.mu.Lock()
			calls = b.calls
			b.mu.Unlock()
			if calls == before["attempts"] || time.Now().After(deadline) {
				break
			}
		}
		if before["failed"] < 1 || before["delivered"] != 0 || before["pending"] != 0 || calls != before["attempts"] {
			t.Errorf("B's deliveries %v after %d requests: want failed and cancelled ones, every request recorded", before, calls)
		}
		// An activation after B was disabled reaches A only.
		activate(short.ID, short.ActivationCode, "after-410")
		a.wait(len(want) + 1)
		if after := deliveriesOfB(); !maps.Equal(after, before) {
			t.Errorf("B's deliveries changed after it was disabled: %v, then %v", before, after)
		}

		// Deleting A stops it; another tenant cannot see or delete it.
		var other struct{ ID string }
		e.do("POST", "/api/v1/tenants", map[string]any{"name": "Other"}, &other)
		if code := e.do("DELETE", "/api/v1/tenants/"+other.ID+"/webhooks/"+hookA.ID, nil, nil); code != http.StatusNotFound {
			t.Errorf("delete through another tenant: %d, want 404", code)
		}
		if code := e.do("DELETE", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookA.ID, nil, nil); code != http.StatusNoContent {
			t.Errorf("delete webhook: %d", code)
		}
		if code := e.do("GET", "/api/v1/tenants/"+tenant.ID+"/webhooks/"+hookA.ID+"/deliveries", nil, nil); code != http.StatusNotFound {
			t.Errorf("deliveries of a deleted webhook: %d, want 404", code)
		}
	})
}

func countRetries(ds []deliveryJSON) int {
	n := 0
	for _, d := range ds {
		for _, a := range d.Attempts {
			if a.StatusCode == 500 {
				n++
			}
		}
	}
	return n
}
