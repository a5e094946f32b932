package server_test

import (
	"bytes"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	licapi "github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/licensing/offline"
)

// TestOfflineLimitsAreNotATenantsToSpend: offline activation attempts
// are limited per client address. A stranger holding a tenant's server
// key file (public: every air-gapped client gets it) and sealing garbage
// to it spends its own budget, not the tenant's.
func TestOfflineLimitsAreNotATenantsToSpend(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{modify: func(c *server.Config) {
			acfg := licapi.DefaultConfig()
			acfg.ActivateRate, acfg.ActivateBurst = rate.Every(time.Hour), 3
			acfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
			c.LicensingAPI = &acfg
		}})
		var tenant, product struct{ ID string }
		e.do("POST", "/api/v1/tenants", map[string]any{"name": "Air-gapped"}, &tenant)
		e.do("POST", "/api/v1/products", map[string]any{"id": "com.example.app", "name": "App"}, &product)
		var ent entitlementJSON
		if code := e.do("POST", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 10}, &ent); code != http.StatusCreated {
			t.Fatalf("create entitlement: %d", code)
		}
		var sk offline.ServerKey
		if code := e.doWith(e.clientWith(server.ScopeLicensingRead), "GET", "/api/v1/tenants/"+tenant.ID+"/offline-key", nil, &sk); code != http.StatusOK {
			t.Fatalf("GET offline-key: %d", code)
		}
		post := func(from string, body []byte) int {
			t.Helper()
			req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/offline/activate", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", from)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		bad, _, err := offline.NewRequest(&sk, offline.Params{ProductID: product.ID, ActivationCode: "AAAA-BBBB-CCCC-DDDD", SeatID: "x"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		refused := false
		for range 10 {
			if post("203.0.113.7", bad.Marshal()) == http.StatusTooManyRequests {
				refused = true
			}
		}
		if !refused {
			t.Fatal("10 attempts from one address in a burst of 3: never refused")
		}
		for i := range 5 {
			from := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}).String()
			env, _, err := offline.NewRequest(&sk, offline.Params{ProductID: product.ID, ActivationCode: ent.ActivationCode, SeatID: from}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := post(from, env.Marshal()); got != http.StatusOK {
				t.Errorf("customer %d after the stranger: %d, want 200", i, got)
			}
		}
	})
}
