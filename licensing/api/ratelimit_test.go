package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/api"
)

// TestActivationLimitsAreNotATenantsToSpend: activation attempts are
// limited per client address; a stranger who knows a tenant's ID (it is
// no secret: every client sends it) spends only its own budget, and the
// tenant's customers still activate. Before, the N-TenantId header keyed
// a tenant-wide budget that anyone could exhaust.
func TestActivationLimitsAreNotATenantsToSpend(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ent := e.entitle(licensing.NewEntitlement{Seats: 20})
		other, err := e.svc.CreateTenant(t.Context(), "Globex")
		if err != nil {
			t.Fatal(err)
		}
		acfg := api.DefaultConfig()
		acfg.ActivateRate, acfg.ActivateBurst = rate.Every(time.Hour), 3
		acfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		srv := httptest.NewServer(api.New(e.svc, acfg))
		t.Cleanup(srv.Close)
		activate := func(from, tenant, code, seat string) int {
			t.Helper()
			b, _ := json.Marshal(map[string]string{"activation_code": code, "seat_id": seat})
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/activate", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", from)
			req.Header.Set(api.HeaderTenant, tenant)
			req.Header.Set(api.HeaderProduct, e.prod.ID)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		const bad = "AAAA-BBBB-CCCC-DDDD"
		// A stranger hammers the tenant with wrong codes until refused.
		var refused bool
		for range 10 {
			if activate("203.0.113.7", e.tenant.ID, bad, "x") == http.StatusTooManyRequests {
				refused = true
			}
		}
		if !refused {
			t.Fatalf("10 attempts from one address in a burst of 3: never refused")
		}
		// ... which spent its own budget, for any tenant it names.
		if got := activate("203.0.113.7", other.ID, bad, "x"); got != http.StatusTooManyRequests {
			t.Errorf("the stranger naming another tenant: %d, want 429", got)
		}
		// The tenant's customers, from their own addresses, still activate,
		// more of them than one burst.
		for i := range 5 {
			from := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}).String()
			if got := activate(from, e.tenant.ID, ent.ActivationCode, from); got != http.StatusOK {
				t.Errorf("customer %d after the stranger: %d, want 200", i, got)
			}
		}
	})
}
