package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// serveOn runs `vigil serve` with the store flags until the test ends and
// returns its base URL and what it printed before serving.
func serveOn(t *testing.T, storeArgs ...string) (base, banner string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--workers", "1"}, storeArgs...)
	go func() {
		done <- cli.Main(ctx, args, cli.Stdio{In: strings.NewReader(""), Out: pw, Err: io.Discard})
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d after cancel", code)
			}
		case <-time.After(2 * time.Minute):
			t.Errorf("serve did not stop after cancel")
		}
	})
	sc := bufio.NewScanner(pr)
	var b strings.Builder
	for sc.Scan() {
		line := sc.Text()
		b.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(line, "serving on "); ok {
			go io.Copy(io.Discard, pr)
			return u, b.String()
		}
	}
	t.Fatalf("serve ended before serving:\n%s", b.String())
	return "", ""
}

// vigilJSON runs a command that must succeed and decodes its output.
func vigilJSON(t *testing.T, out any, args ...string) string {
	t.Helper()
	code, stdout, stderr := vigil(t, args...)
	if code != 0 {
		t.Fatalf("vigil %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("vigil %s printed %q: %v", strings.Join(args, " "), stdout, err)
	}
	return stdout
}

// sealKeyFile writes a seal key (what vigil serve makes) and returns the
// flag that passes it: the admin commands need it with --database.
func sealKeyFile(t *testing.T) []string {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	path := filepath.Join(t.TempDir(), "seal.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--seal-key-file", path}
}

func TestLicensingCommands(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		storeArgs := []string{"--data", filepath.Join(t.TempDir(), "data")}
		if dialect == store.Postgres {
			storeArgs = append(storeArgs, "--database", storetest.DSN(t, dialect))
			// Without the installation's seal key the command refuses: a
			// new key would make codes that serve cannot verify.
			code, _, stderr := vigil(t, append([]string{"tenants", "create", "--name", "Acme"}, storeArgs...)...)
			if code != 2 || !strings.Contains(stderr, "seal key") {
				t.Errorf("tenants create with --database and no seal key: exit %d, %q", code, stderr)
			}
			storeArgs = append(storeArgs, sealKeyFile(t)...)
		}
		with := func(args ...string) []string { return append(args, storeArgs...) }

		var tenant struct{ ID, Name, Status string }
		vigilJSON(t, &tenant, with("tenants", "create", "--name", "Acme", "--json")...)
		if tenant.ID == "" || tenant.Name != "Acme" || tenant.Status != "active" {
			t.Fatalf("tenants create: %+v", tenant)
		}
		var product struct{ ID, Name string }
		vigilJSON(t, &product, with("products", "create", "--name", "App", "--id", "com.example.app", "--json")...)
		if product.ID != "com.example.app" {
			t.Fatalf("products create: %+v", product)
		}
		var ent struct {
			ID             string
			TenantID       string `json:"tenant_id"`
			Seats          int
			ExpiresAt      time.Time `json:"expires_at"`
			LeaseSeconds   int64     `json:"lease_seconds"`
			ActivationCode string    `json:"activation_code"`
			Features       map[string]struct {
				Kind  string
				Limit int
			}
		}
		vigilJSON(t, &ent, with("entitlements", "create", "--tenant", tenant.ID, "--product", product.ID, "--seats", "3",
			"--expires", "2099-01-31", "--lease", "2h", "--feature", "export", "--counted-feature", "jobs=4", "--json")...)
		if ent.ID == "" || ent.ActivationCode == "" || ent.TenantID != tenant.ID || ent.Seats != 3 || ent.LeaseSeconds != 7200 ||
			!ent.ExpiresAt.Equal(time.Date(2099, 2, 1, 0, 0, 0, 0, time.UTC)) /* a date is the last valid day, as for waivers */ || ent.Features["jobs"].Limit != 4 || ent.Features["export"].Kind != "boolean" {
			t.Fatalf("entitlements create: %+v", ent)
		}

		// Bad input: exit 2, naming the flag.
		for _, tc := range []struct {
			args []string
			flag string
		}{
			{[]string{"tenants", "create"}, "--name"},
			{[]string{"products", "create", "--name", "X", "--id", "a b"}, "--id"},
			{[]string{"entitlements", "create", "--product", product.ID, "--seats", "1"}, "--tenant"},
			{[]string{"entitlements", "create", "--tenant", tenant.ID, "--product", product.ID}, "--seats"},
			{[]string{"entitlements", "create", "--tenant", tenant.ID, "--product", product.ID, "--seats", "1", "--expires", "31/01/2027"}, "--expires"},
			{[]string{"entitlements", "create", "--tenant", tenant.ID, "--product", product.ID, "--seats", "1", "--expires", "2020-01-01"}, "--expires"},
			{[]string{"entitlements", "create", "--tenant", tenant.ID, "--product", product.ID, "--seats", "1", "--lease", "1500ms"}, "--lease"},
			{[]string{"entitlements", "create", "--tenant", "nope", "--product", product.ID, "--seats", "1"}, "--tenant"},
			{[]string{"entitlements", "create", "--tenant", tenant.ID, "--product", "nope", "--seats", "1"}, "--product"},
			{[]string{"entitlements", "create", "--tenant", tenant.ID, "--product", product.ID, "--seats", "1", "--counted-feature", "jobs"}, "--counted-feature"},
			{[]string{"tenants", "suspend", "nope"}, "nope"},
			{[]string{"entitlements", "suspend"}, "arg"},
		} {
			code, _, stderr := vigil(t, with(tc.args...)...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.flag) {
				t.Errorf("vigil %s: exit %d %q; want %d naming %s", strings.Join(tc.args, " "), code, stderr, cli.ExitUsage, tc.flag)
			}
		}

		// The code activates through `vigil serve` on the same store.
		base, banner := serveOn(t, storeArgs...)
		hc := insecureClient()
		activate := func(seat string) (int, []byte) {
			body, _ := json.Marshal(map[string]string{"activation_code": ent.ActivationCode, "seat_id": seat})
			req, _ := http.NewRequest("POST", base+"/api/v1/activate", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("N-TenantId", tenant.ID)
			req.Header.Set("N-ProductId", product.ID)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode == 200 && resp.Header.Get("N-Nonce") == "" {
				t.Errorf("activate answered no N-Nonce")
			}
			return resp.StatusCode, b
		}
		if code, body := activate("host-1"); code != 200 || !bytes.Contains(body, []byte(`"access_token"`)) {
			t.Fatalf("activate with the CLI's code: %d %s", code, body)
		}

		// --json prints exactly what the API answers.
		api := func(path string) string {
			t.Helper()
			id, secret := field(banner, "client_id"), field(banner, "client_secret")
			cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: base + "/oauth2/token"}
			resp, err := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, hc)).Get(base + path)
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
		for _, kind := range []string{"tenants", "products", "entitlements"} {
			_, out, _ := vigil(t, with(kind, "list", "--json")...)
			if want := api("/api/v1/" + kind); out != want {
				t.Errorf("%s list --json printed\n%s\nthe API answers\n%s", kind, out, want)
			}
		}
		var susp struct{ Status string }
		out := vigilJSON(t, &susp, with("entitlements", "suspend", ent.ID, "--json")...)
		if susp.Status != "suspended" || out != api("/api/v1/entitlements/"+ent.ID) {
			t.Errorf("entitlements suspend --json printed %s", out)
		}
		if code, body := activate("host-2"); code != http.StatusForbidden || !bytes.Contains(body, []byte("SUSPENDED")) {
			t.Errorf("activate a suspended entitlement: %d %s", code, body)
		}
		out = vigilJSON(t, &susp, with("tenants", "suspend", tenant.ID, "--json")...)
		if susp.Status != "suspended" || out != api("/api/v1/tenants/"+tenant.ID) {
			t.Errorf("tenants suspend --json printed %s", out)
		}
		// The licensing scopes are known to `vigil clients create`.
		var creds struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		vigilJSON(t, &creds, with("clients", "create", "--name", "back-office", "--scopes", "licensing:read,licensing:admin", "--json")...)
		cc := clientcredentials.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TokenURL: base + "/oauth2/token"}
		if resp, err := cc.Client(context.WithValue(context.Background(), oauth2.HTTPClient, hc)).Get(base + "/api/v1/entitlements"); err != nil || resp.StatusCode != 200 {
			t.Errorf("GET /api/v1/entitlements with a licensing client: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if code, out, _ := vigil(t, with("tenants", "list")...); code != 0 || !strings.Contains(out, tenant.ID) || !strings.Contains(out, "suspended") {
			t.Errorf("tenants list: exit %d\n%s", code, out)
		}
	})
}
