package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	licapi "github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/licensing/offline"
)

// postOffline posts a body to the offline endpoint, without a token.
func (e *env) postOffline(body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	resp, err := e.ts.Client().Post(e.ts.URL+"/api/v1/offline/activate", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func errCode(b []byte) string {
	var e struct{ Code string }
	json.Unmarshal(b, &e)
	return e.Code
}

func TestOfflineActivationAPI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		var tenant, product struct{ ID string }
		e.do("POST", "/api/v1/tenants", map[string]any{"name": "Air-gapped"}, &tenant)
		e.do("POST", "/api/v1/products", map[string]any{"id": "com.example.app", "name": "App"}, &product)
		var ent entitlementJSON
		if code := e.do("POST", "/api/v1/entitlements", map[string]any{"tenant_id": tenant.ID, "product_id": product.ID, "seats": 1}, &ent); code != http.StatusCreated {
			t.Fatalf("create entitlement: %d", code)
		}

		// The server key: scope licensing:read; 404 for an unknown tenant.
		var sk offline.ServerKey
		reader := e.clientWith(server.ScopeLicensingRead)
		if code := e.doWith(reader, "GET", "/api/v1/tenants/"+tenant.ID+"/offline-key", nil, &sk); code != http.StatusOK {
			t.Fatalf("GET offline-key: %d", code)
		}
		if sk.TenantID != tenant.ID || len(sk.KEMs) != 2 || sk.KEMs[0].KEM != offline.KEMX25519 || sk.KEMs[1].KEM != offline.KEMMLKEM768X25519 {
			t.Errorf("offline key %+v", sk)
		}
		if code := e.doWith(e.clientWith("scans:read"), "GET", "/api/v1/tenants/"+tenant.ID+"/offline-key", nil, nil); code != http.StatusForbidden {
			t.Errorf("GET offline-key with scans:read: %d, want 403", code)
		}
		if code := e.doWith(reader, "GET", "/api/v1/tenants/nope/offline-key", nil, nil); code != http.StatusNotFound {
			t.Errorf("GET offline-key of an unknown tenant: %d, want 404", code)
		}
		b, _ := json.Marshal(sk)
		if _, err := offline.ParseServerKey(b); err != nil {
			t.Fatalf("the API's server key does not parse as a key file: %v", err)
		}

		// Activate through the API, verify on the client.
		now := time.Now()
		env, ck, err := offline.NewRequest(&sk, offline.Params{ProductID: product.ID, ActivationCode: ent.ActivationCode, SeatID: "host-1", KEM: offline.KEMMLKEM768X25519}, nil)
		if err != nil {
			t.Fatal(err)
		}
		code, h, body := e.postOffline(env.Marshal())
		if code != http.StatusOK || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("offline activate: %d %s %s", code, h.Get("Cache-Control"), body)
		}
		ans, err := offline.ParseEnvelope(body, offline.PurposeAnswer)
		if err != nil {
			t.Fatal(err)
		}
		lic, err := offline.OpenAt(ans, ck, &sk, &offline.State{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if lic.SeatID != "host-1" || lic.EntitlementID != ent.ID {
			t.Errorf("license %+v", lic)
		}

		// Replay: 409.
		if code, _, body := e.postOffline(env.Marshal()); code != http.StatusConflict || errCode(body) != "OFFLINE_REQUEST_REPLAYED" {
			t.Errorf("replay: %d %s", code, body)
		}

		// A wrong code answers the online activation's 401 body, byte for byte.
		env2, _, _ := offline.NewRequest(&sk, offline.Params{ProductID: product.ID, ActivationCode: "AAAA-BBBB-CCCC-DDDD", SeatID: "host-2"}, nil)
		code, _, offBody := e.postOffline(env2.Marshal())
		onCode, _, onBody := e.licensingCall("POST", "/api/v1/activate", map[string]string{licapi.HeaderTenant: tenant.ID, licapi.HeaderProduct: product.ID},
			map[string]any{"activation_code": "AAAA-BBBB-CCCC-DDDD", "seat_id": "host-2"})
		if code != http.StatusUnauthorized || onCode != code || !bytes.Equal(offBody, onBody) {
			t.Errorf("wrong code: offline %d %s; online %d %s", code, offBody, onCode, onBody)
		}

		// Tampered, malformed and oversized bodies.
		env3, _, _ := offline.NewRequest(&sk, offline.Params{ProductID: product.ID, ActivationCode: ent.ActivationCode, SeatID: "host-3"}, nil)
		env3.Ciphertext[5] ^= 1
		if code, _, body := e.postOffline(env3.Marshal()); code != http.StatusBadRequest || errCode(body) != "OFFLINE_REQUEST_INVALID" {
			t.Errorf("tampered: %d %s", code, body)
		}
		if code, _, body := e.postOffline([]byte(`{"version": 1}`)); code != http.StatusBadRequest || errCode(body) != "OFFLINE_REQUEST_INVALID" {
			t.Errorf("malformed: %d %s", code, body)
		}
		if code, _, body := e.postOffline([]byte(strings.Repeat(" ", offline.MaxEnvelope+1))); code != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized: %d %s", code, body)
		}

		// Attempts are rate-limited like online activations.
		limited := false
		for range 20 {
			code, h, _ := e.postOffline(env2.Marshal())
			if code == http.StatusTooManyRequests {
				limited = h.Get("Retry-After") != ""
				break
			}
		}
		if !limited {
			t.Error("20 quick attempts were not rate-limited")
		}
	})
}
