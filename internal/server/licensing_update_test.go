package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	licapi "github.com/vigil-sec/vigil/licensing/api"
)

// TestLicensingUpdates changes tenants, products and entitlements through
// PATCH and sees the changes take effect on the Licensing API.
func TestLicensingUpdates(t *testing.T) {
	e := setup(t, store.SQLite)
	var tenant, product struct{ ID, Name string }
	e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tenant)
	e.do("POST", "/api/v1/products", map[string]any{"id": "com.example.app", "name": "App"}, &product)
	var ent entitlementJSON
	if code := e.do("POST", "/api/v1/entitlements", map[string]any{
		"tenant_id": tenant.ID, "product_id": product.ID, "seats": 1, "expires_at": time.Now().Add(48 * time.Hour),
	}, &ent); code != http.StatusCreated {
		t.Fatalf("create entitlement: %d", code)
	}

	if code := e.do("PATCH", "/api/v1/tenants/"+tenant.ID, map[string]any{"name": "Acme Corp"}, &tenant); code != 200 || tenant.Name != "Acme Corp" {
		t.Errorf("rename tenant: %d %+v", code, tenant)
	}
	if code := e.do("PATCH", "/api/v1/products/"+product.ID, map[string]any{"name": "App 2"}, &product); code != 200 || product.Name != "App 2" || product.ID != "com.example.app" {
		t.Errorf("rename product: %d %+v", code, product)
	}

	activate := func(seat string) (int, []byte) {
		hdr := map[string]string{licapi.HeaderTenant: tenant.ID, licapi.HeaderProduct: product.ID}
		status, _, body := e.licensingCall("POST", "/api/v1/activate", hdr, map[string]string{"activation_code": ent.ActivationCode, "seat_id": seat})
		return status, body
	}
	if status, body := activate("host-1"); status != 200 {
		t.Fatalf("first seat: %d %s", status, body)
	}
	if status, body := activate("host-2"); status == 200 || !bytes.Contains(body, []byte("NO_SEATS")) {
		t.Fatalf("second seat of one: %d %s, want NO_SEATS", status, body)
	}
	var got entitlementJSON
	if code := e.do("PATCH", "/api/v1/entitlements/"+ent.ID, map[string]any{"seats": 2, "lease_seconds": 600, "expires_at": nil}, &got); code != 200 ||
		got.Seats != 2 || got.LeaseSeconds != 600 || !got.ExpiresAt.IsZero() || got.ActivationCode != "" {
		t.Fatalf("update entitlement: %d %+v", code, got)
	}
	if status, body := activate("host-2"); status != 200 {
		t.Fatalf("second seat after raising seats to 2: %d %s", status, body)
	}
	// Absent members stay.
	if code := e.do("PATCH", "/api/v1/entitlements/"+ent.ID, map[string]any{"features": map[string]any{"export": map[string]any{"kind": "boolean"}}}, &got); code != 200 ||
		got.Seats != 2 || got.LeaseSeconds != 600 {
		t.Fatalf("update features only: %d %+v", code, got)
	}

	for _, tc := range []struct {
		path  string
		body  map[string]any
		field string
	}{
		{"/api/v1/entitlements/" + ent.ID, map[string]any{"seats": 0}, "seats"},
		{"/api/v1/entitlements/" + ent.ID, map[string]any{"lease_seconds": 0}, "lease_seconds"},
		{"/api/v1/entitlements/" + ent.ID, map[string]any{"expires_at": "2001-01-01T00:00:00Z"}, "expiry"},
		{"/api/v1/entitlements/" + ent.ID, map[string]any{"expires_at": "soon"}, "expires_at"},
		{"/api/v1/entitlements/" + ent.ID, map[string]any{"features": map[string]any{"x": map[string]any{"kind": "counted"}}}, "feature"},
		{"/api/v1/tenants/" + tenant.ID, map[string]any{"name": " "}, "name"},
	} {
		var er struct{ Code, Message string }
		if code := e.do("PATCH", tc.path, tc.body, &er); code != http.StatusBadRequest || !strings.Contains(er.Message, tc.field) {
			t.Errorf("PATCH %s %v: %d %+v, want 400 naming %q", tc.path, tc.body, code, er, tc.field)
		}
	}
	if code := e.do("GET", "/api/v1/entitlements/"+ent.ID, nil, &got); code != 200 || got.Seats != 2 || got.LeaseSeconds != 600 {
		t.Errorf("bad updates changed the entitlement: %+v", got)
	}
	for p, body := range map[string]map[string]any{
		"/api/v1/entitlements/nope": {"seats": 3}, "/api/v1/tenants/nope": {"name": "x"}, "/api/v1/products/nope": {"name": "x"},
	} {
		if code := e.do("PATCH", p, body, nil); code != http.StatusNotFound {
			t.Errorf("PATCH %s: %d, want 404", p, code)
		}
	}
	read := e.clientWith(server.ScopeLicensingRead)
	if code := e.doWith(read, "PATCH", "/api/v1/tenants/"+tenant.ID, map[string]any{"name": "x"}, nil); code != http.StatusForbidden {
		t.Errorf("PATCH with licensing:read: %d, want 403", code)
	}
}
