package cli_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
)

// TestTicketsCommands runs `vigil tickets` against `vigil serve`, as staff
// and as a customer's client made by `vigil clients create --tenant`:
// every command, --json (what the API answers), and the exit codes.
func TestTicketsCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if code, _, stderr := vigil(t, "serve", "--data", data, "--tickets-auto-approve", "always"); code != cli.ExitUsage || !strings.Contains(stderr, "--tickets-auto-approve") {
		t.Errorf("serve --tickets-auto-approve always: exit %d %q, want %d naming the flag", code, stderr, cli.ExitUsage)
	}
	base, banner := serveOn(t, "--data", data, "--tickets-auto-approve", "off")
	adminID, adminSecret := field(banner, "client_id"), field(banner, "client_secret")
	srv := []string{"--server", base, "--fingerprint", field(banner, "TLS certificate SHA-256 fingerprint")}
	with := func(args ...string) []string { return append(args, srv...) }
	as := func(id, secret string) {
		t.Setenv("VIGIL_CLIENT_ID", id)
		t.Setenv("VIGIL_CLIENT_SECRET", secret)
	}
	as(adminID, adminSecret)
	t.Setenv("VIGIL_SERVER", "")
	api := func(path string) string {
		t.Helper()
		cc := clientcredentials.Config{ClientID: adminID, ClientSecret: adminSecret, TokenURL: base + "/oauth2/token"}
		resp, err := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, insecureClient())).Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}

	var tenant struct{ ID string }
	vigilJSON(t, &tenant, "tenants", "create", "--data", data, "--name", "Acme", "--json")
	for _, p := range []string{"app", "legacy"} {
		if code, _, _ := vigil(t, "products", "create", "--data", data, "--name", p, "--id", p); code != 0 {
			t.Fatalf("products create %s: exit %d", p, code)
		}
	}
	if code, _, _ := vigil(t, "entitlements", "create", "--data", data, "--tenant", tenant.ID, "--product", "app", "--seats", "1"); code != 0 {
		t.Fatalf("entitlements create: exit %d", code)
	}

	// A customer's client, bound to Acme.
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	vigilJSON(t, &creds, "clients", "create", "--data", data, "--name", "acme portal", "--tenant", tenant.ID, "--scope", "tickets:write", "--json")
	for _, bad := range [][]string{
		{"--tenant", tenant.ID, "--scopes", "tickets:admin"},
		{"--tenant", tenant.ID, "--scopes", "tickets:write,licensing:read"},
		{"--tenant", "no-such-tenant", "--scopes", "tickets:write"},
	} {
		if code, _, stderr := vigil(t, append([]string{"clients", "create", "--data", data, "--name", "x"}, bad...)...); code != cli.ExitUsage || stderr == "" {
			t.Errorf("clients create %q: exit %d, want %d", bad, code, cli.ExitUsage)
		}
	}
	if code, out, _ := vigil(t, "clients", "list", "--data", data); code != 0 || !strings.Contains(out, tenant.ID) || !strings.Contains(out, "TENANT") {
		t.Errorf("clients list: exit %d\n%s", code, out)
	}

	// Staff open one for Acme.
	var tk struct {
		ID, Status, Release string
		Number              int64
		History             []struct{ Type, Actor string }
	}
	vigilJSON(t, &tk, with("tickets", "create", "--tenant", tenant.ID, "--product", "app", "--subject", "Audit report", "--message", "Asked by phone.", "--json")...)
	if tk.Number != 1 || tk.Status != "open" || len(tk.History) != 1 || tk.History[0].Actor != adminID {
		t.Fatalf("tickets create: %+v", tk)
	}
	code, _, stderr := vigil(t, with("tickets", "create", "--tenant", tenant.ID, "--product", "app", "--product", "legacy", "--subject", "s", "--message", "m")...)
	if code != cli.ExitUsage || !strings.Contains(stderr, "NOT_ENTITLED") || !strings.Contains(stderr, `"legacy"`) {
		t.Errorf("tickets create for an unentitled product: exit %d %q", code, stderr)
	}
	for _, args := range [][]string{
		{"tickets", "create", "--tenant", tenant.ID, "--subject", "s", "--message", "m"},
		{"tickets", "show", "abc"},
		{"tickets", "show", "99"},
		{"tickets", "reject", "1"},
		{"tickets", "comment", "1"},
		{"tickets", "list", "--status", "closed"},
	} {
		if code, _, _ := vigil(t, with(args...)...); code != cli.ExitUsage {
			t.Errorf("vigil %s: exit %d, want %d", strings.Join(args, " "), code, cli.ExitUsage)
		}
	}

	// The customer opens one, reads both of its tenant's, cannot decide.
	as(creds.ClientID, creds.ClientSecret)
	vigilJSON(t, &tk, with("tickets", "create", "--product", "app", "--subject", "Latest report", "--message", "For our audit.", "--json")...)
	if tk.Number != 2 || tk.History[0].Actor != creds.ClientID {
		t.Fatalf("customer's tickets create: %+v", tk)
	}
	if code, out, _ := vigil(t, with("tickets", "list")...); code != 0 || !strings.Contains(out, "Audit report") || !strings.Contains(out, "Latest report") {
		t.Errorf("customer's tickets list: exit %d\n%s", code, out)
	}
	if code, _, stderr := vigil(t, with("tickets", "approve", "2")...); code == 0 || !strings.Contains(stderr, "INSUFFICIENT_SCOPE") {
		t.Errorf("customer approving: exit %d %q", code, stderr)
	}
	if code, out, _ := vigil(t, with("tickets", "comment", "2", "--message", "Thanks!\nAcme")...); code != 0 || !strings.Contains(out, "commented by "+creds.ClientID) || !strings.Contains(out, "     Acme") {
		t.Errorf("customer's comment: exit %d\n%s", code, out)
	}

	// Staff decide.
	as(adminID, adminSecret)
	if code, out, _ := vigil(t, with("tickets", "approve", "2", "--release", "1.4.0")...); code != 0 || !strings.Contains(out, "ticket 2 (") ||
		!strings.Contains(out, ": approved") || !strings.Contains(out, "approved by "+adminID+" (release 1.4.0)") {
		t.Errorf("tickets approve: exit %d\n%s", code, out)
	}
	if code, out, _ := vigil(t, with("tickets", "reject", "1", "--reason", "Duplicate of 2.")...); code != 0 || !strings.Contains(out, "rejected by") || !strings.Contains(out, "Duplicate of 2.") {
		t.Errorf("tickets reject: exit %d\n%s", code, out)
	}
	if code, _, stderr := vigil(t, with("tickets", "reject", "1", "--reason", "again")...); code != cli.ExitUsage || !strings.Contains(stderr, "CONFLICT") {
		t.Errorf("rejecting a rejected ticket: exit %d %q", code, stderr)
	}
	if _, out, _ := vigil(t, with("tickets", "show", "2", "--json")...); out != api("/api/v1/tickets/2") {
		t.Errorf("tickets show --json printed\n%s\nthe API answers\n%s", out, api("/api/v1/tickets/2"))
	}
	if _, out, _ := vigil(t, with("tickets", "list", "--status", "approved", "--tenant", tenant.ID, "--json")...); out != api("/api/v1/tickets?status=approved&tenant_id="+tenant.ID) {
		t.Errorf("tickets list --json printed\n%s\nthe API answers\n%s", out, api("/api/v1/tickets?status=approved&tenant_id="+tenant.ID))
	}
	if code, out, _ := vigil(t, with("tickets", "list", "--status", "rejected")...); code != 0 || !strings.Contains(out, "rejected") || strings.Contains(out, "approved") {
		t.Errorf("tickets list --status rejected: exit %d\n%s", code, out)
	}
}
