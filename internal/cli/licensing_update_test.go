package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/cli"
)

func TestLicensingUpdateCommands(t *testing.T) {
	storeArgs := []string{"--data", filepath.Join(t.TempDir(), "data")}
	with := func(args ...string) []string { return append(args, storeArgs...) }

	var tenant struct{ ID, Name string }
	vigilJSON(t, &tenant, with("tenants", "create", "--name", "Acme", "--json")...)
	vigilJSON(t, &tenant, with("tenants", "rename", tenant.ID, "--name", "Acme Corp", "--json")...)
	if tenant.Name != "Acme Corp" {
		t.Errorf("tenants rename: %+v", tenant)
	}
	var product struct{ ID, Name string }
	vigilJSON(t, &product, with("products", "create", "--name", "App", "--id", "com.example.app", "--json")...)
	vigilJSON(t, &product, with("products", "rename", product.ID, "--name", "App 2", "--json")...)
	if product.Name != "App 2" || product.ID != "com.example.app" {
		t.Errorf("products rename: %+v", product)
	}

	type entJSON struct {
		ID           string
		Seats        int
		ExpiresAt    time.Time `json:"expires_at"`
		LeaseSeconds int64     `json:"lease_seconds"`
		Features     map[string]struct {
			Kind  string
			Limit int
		}
	}
	var ent entJSON
	vigilJSON(t, &ent, with("entitlements", "create", "--tenant", tenant.ID, "--product", product.ID, "--seats", "3",
		"--expires", "2099-01-31", "--feature", "export", "--json")...)
	var got entJSON
	vigilJSON(t, &got, with("entitlements", "update", ent.ID, "--seats", "5", "--lease", "1h", "--json")...)
	if got.Seats != 5 || got.LeaseSeconds != 3600 || !got.ExpiresAt.Equal(ent.ExpiresAt) || got.Features["export"].Kind != "boolean" {
		t.Errorf("update --seats --lease changed more or less than asked: %+v", got)
	}
	got = entJSON{} // omitted members must read as absent
	vigilJSON(t, &got, with("entitlements", "update", ent.ID, "--expires", "never", "--counted-feature", "jobs=2", "--json")...)
	if !got.ExpiresAt.IsZero() || got.Seats != 5 || len(got.Features) != 1 || got.Features["jobs"].Limit != 2 {
		t.Errorf("update --expires never --counted-feature: %+v", got)
	}
	got = entJSON{}
	vigilJSON(t, &got, with("entitlements", "update", ent.ID, "--no-features", "--json")...)
	if len(got.Features) != 0 {
		t.Errorf("update --no-features: %+v", got)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"entitlements", "update", ent.ID}, "nothing to change"},
		{[]string{"entitlements", "update", ent.ID, "--seats", "0"}, "seats"},
		{[]string{"entitlements", "update", ent.ID, "--lease", "0s"}, "--lease"},
		{[]string{"entitlements", "update", ent.ID, "--expires", "2001-01-01"}, "--expires"},
		{[]string{"entitlements", "update", ent.ID, "--no-features", "--feature", "x"}, "--no-features"},
		{[]string{"entitlements", "update", "nope", "--seats", "2"}, "nope"},
		{[]string{"tenants", "rename", tenant.ID}, "--name"},
		{[]string{"products", "rename", "nope", "--name", "x"}, "nope"},
	} {
		code, _, stderr := vigil(t, with(tc.args...)...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("vigil %s: exit %d %q; want %d naming %q", strings.Join(tc.args, " "), code, stderr, cli.ExitUsage, tc.want)
		}
	}
	var list struct{ Entitlements []entJSON }
	vigilJSON(t, &list, with("entitlements", "list", "--json")...)
	if len(list.Entitlements) != 1 || list.Entitlements[0].Seats != 5 {
		t.Errorf("entitlements list after the refused updates: %+v", list)
	}
}
