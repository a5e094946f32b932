package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// twoWays is `vigil serve` on a store, and the flags that reach it either
// way: the store itself, and the server's Management API.
type twoWays struct {
	t             *testing.T
	data          string
	store, server []string
}

// serveTwoWays runs vigil serve on a fresh store of the dialect (in
// data) and puts its admin client's credentials in the environment.
func serveTwoWays(t *testing.T, dialect store.Dialect, data string) *twoWays {
	t.Helper()
	storeArgs := []string{"--data", data}
	if dialect == store.Postgres {
		storeArgs = append(storeArgs, "--database", storetest.DSN(t, dialect))
	}
	base, banner := serveOn(t, storeArgs...)
	id, secret, fp := field(banner, "client_id"), field(banner, "client_secret"), field(banner, "TLS certificate SHA-256 fingerprint")
	if id == "" || secret == "" || fp == "" {
		t.Fatalf("no admin client or fingerprint printed:\n%s", banner)
	}
	t.Setenv("VIGIL_CLIENT_ID", id)
	t.Setenv("VIGIL_CLIENT_SECRET", secret)
	t.Setenv("VIGIL_SERVER", "")
	if dialect == store.Postgres {
		storeArgs = append(storeArgs, "--seal-key-file", filepath.Join(data, "seal.key"))
	}
	return &twoWays{t: t, data: data, store: storeArgs, server: []string{"--server", base, "--fingerprint", fp}}
}

// run runs a command that must succeed through one transport.
func (w *twoWays) run(transport []string, args ...string) string {
	w.t.Helper()
	var full []string
	for _, a := range append(args, transport...) {
		if a != "" { // an optional flag left out
			full = append(full, a)
		}
	}
	code, out, stderr := vigil(w.t, full...)
	if code != 0 {
		w.t.Fatalf("vigil %s %s: exit %d: %s", strings.Join(args, " "), transport[0], code, stderr)
	}
	return out
}

// same runs the command on the store, then through the server, and fails
// unless both print the same (after norm, which hides what a create
// makes anew: IDs, secrets, times). It returns the store's output.
func (w *twoWays) same(norm func(string) string, args ...string) string {
	w.t.Helper()
	local := w.run(w.store, args...)
	remote := w.run(w.server, args...)
	if norm(local) != norm(remote) {
		w.t.Errorf("vigil %s printed on the store:\n%s\nand through the server:\n%s", strings.Join(args, " "), local, remote)
	}
	return local
}

// exact is no normalisation: the same objects, in the same state.
func exact(s string) string { return s }

var (
	uuidRE   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	secretRE = regexp.MustCompile(`("(client_secret|activation_code|kid)":"|client_secret: +|activation code: +|^)[A-Za-z0-9_\-]{16,}`)
)

// made hides what a create makes anew.
func made(s string) string {
	s = uuidRE.ReplaceAllString(s, "<id>")
	s = timeRE.ReplaceAllString(s, "<time>")
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		b.WriteString(secretRE.ReplaceAllString(l, "$1<secret>"))
	}
	return b.String()
}

// TestAdminCommandsTwoTransports runs every administration command on
// the store (--data/--database) and through a running server (--server),
// and compares what they print, tables and --json; then how the transport
// is chosen without flags, and that errors say which one was used.
func TestAdminCommandsTwoTransports(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(string(dialect), func(t *testing.T) {
			w := serveTwoWays(t, dialect, filepath.Join(t.TempDir(), "vigil-data"))
			testTwoTransports(t, w)
			if dialect == store.SQLite {
				testChooseTransport(t, w)
			}
		})
	}
}

func testTwoTransports(t *testing.T, w *twoWays) {
	// Tenants.
	for _, json := range []string{"", "--json"} {
		w.same(made, "tenants", "create", "--name", "Acme", json)
	}
	tenant := strings.Fields(w.run(w.store, "tenants", "create", "--name", "Initech"))[1]
	for _, json := range []string{"", "--json"} {
		w.same(exact, "tenants", "list", json)
		w.same(exact, "tenants", "rename", tenant, "--name", "Initech Corp", json)
		// suspend on the store, resume through the server, and again the
		// other way round: the same object in the same state each time.
		local := w.run(w.store, "tenants", "suspend", tenant, json)
		remoteResume := w.run(w.server, "tenants", "resume", tenant, json)
		remote := w.run(w.server, "tenants", "suspend", tenant, json)
		localResume := w.run(w.store, "tenants", "resume", tenant, json)
		if local != remote || localResume != remoteResume {
			t.Errorf("tenants suspend|resume %s printed\n%s%s on the store, and\n%s%s through the server", json, local, localResume, remote, remoteResume)
		}
	}
	if out := w.run(w.server, "tenants", "list"); !strings.Contains(out, "Initech Corp") || !strings.Contains(out, "Acme") {
		t.Errorf("tenants list:\n%s", out)
	}

	// Products.
	for _, json := range []string{"", "--json"} {
		w.same(made, "products", "create", "--name", "App", json)
	}
	product := strings.Fields(w.run(w.server, "products", "create", "--name", "Widget", "--id", "com.example.widget"))[1]
	for _, json := range []string{"", "--json"} {
		w.same(exact, "products", "list", json)
		w.same(exact, "products", "rename", product, "--name", "Widget Pro", json)
	}

	// Entitlements.
	create := []string{"entitlements", "create", "--tenant", tenant, "--product", product, "--seats", "3",
		"--expires", "2099-01-31", "--lease", "2h", "--feature", "export", "--counted-feature", "jobs=4"}
	for _, json := range []string{"", "--json"} {
		out := w.same(made, append(create, json)...)
		if !strings.Contains(out, "activation") {
			t.Errorf("entitlements create printed no activation code:\n%s", out)
		}
	}
	ent := strings.Fields(w.run(w.store, create...))[1]
	for _, json := range []string{"", "--json"} {
		w.same(exact, "entitlements", "list", json)
		w.same(exact, "entitlements", "list", "--tenant", tenant, json)
		w.same(exact, "entitlements", "update", ent, "--seats", "5", "--expires", "2098-12-31", "--lease", "1h", "--feature", "sso", json)
		w.same(exact, "entitlements", "update", ent, "--expires", "never", "--no-features", json)
		local := w.run(w.store, "entitlements", "suspend", ent, json)
		remoteResume := w.run(w.server, "entitlements", "resume", ent, json)
		remote := w.run(w.server, "entitlements", "suspend", ent, json)
		localResume := w.run(w.store, "entitlements", "resume", ent, json)
		if local != remote || localResume != remoteResume {
			t.Errorf("entitlements suspend|resume %s printed\n%s%s on the store, and\n%s%s through the server", json, local, localResume, remote, remoteResume)
		}
	}

	// The tenant's offline server key, printed and written.
	dir := t.TempDir()
	for _, json := range []string{"", "--json"} {
		local := w.run(w.store, "license", "server-key", "--tenant", tenant, "--out", filepath.Join(dir, "local.json"), json)
		remote := w.run(w.server, "license", "server-key", "--tenant", tenant, "--out", filepath.Join(dir, "remote.json"), json)
		if strings.ReplaceAll(local, "local.json", "X") != strings.ReplaceAll(remote, "remote.json", "X") {
			t.Errorf("license server-key %s printed\n%s on the store, and\n%s through the server", json, local, remote)
		}
		a, _ := os.ReadFile(filepath.Join(dir, "local.json"))
		b, _ := os.ReadFile(filepath.Join(dir, "remote.json"))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("license server-key --out wrote\n%s on the store, and\n%s through the server", a, b)
		}
	}

	// Clients.
	for _, json := range []string{"", "--json"} {
		w.same(made, "clients", "create", "--name", "ci", "--scopes", "scans:read,gate:read", json)
		w.same(made, "clients", "create", "--name", "acme-portal", "--tenant", tenant, "--scopes", "tickets:write", json)
		w.same(exact, "clients", "list", json)
	}
	for _, json := range []string{"", "--json"} {
		local := strings.Fields(w.run(w.store, "clients", "create", "--name", "gone", "--scopes", "gate:read"))[1]
		remote := strings.Fields(w.run(w.store, "clients", "create", "--name", "gone", "--scopes", "gate:read"))[1]
		l, r := w.run(w.store, "clients", "revoke", local, json), w.run(w.server, "clients", "revoke", remote, json)
		if made(l) != made(r) || !strings.Contains(l, local) || !strings.Contains(r, remote) {
			t.Errorf("clients revoke %s printed\n%s on the store, and\n%s through the server", json, l, r)
		}
	}
	w.same(exact, "clients", "list")

	// Report-signing keys.
	w.same(exact, "keys", "list", "--purpose", "reports", "--json")
	for _, json := range []string{"", "--json"} {
		w.same(made, "keys", "rotate", "--purpose", "reports", json)
		w.same(exact, "keys", "list", "--purpose", "reports", json)
	}

	// Refusals: the same exit code either way, the input named, and the
	// transport said.
	for _, tc := range []struct {
		args []string
		name string
	}{
		{[]string{"tenants", "suspend", "nope-tenant"}, "nope-tenant"},
		{[]string{"entitlements", "update", "nope-ent", "--seats", "2"}, "nope-ent"},
		{[]string{"entitlements", "create", "--tenant", "nope-tenant", "--product", product, "--seats", "1"}, "nope-tenant"},
		{[]string{"clients", "revoke", "nope-client"}, "nope-client"},
		{[]string{"clients", "create", "--name", "x", "--tenant", "nope-tenant", "--scopes", "tickets:write"}, "nope-tenant"},
		{[]string{"license", "server-key", "--tenant", "nope-tenant"}, "nope-tenant"},
	} {
		for _, way := range []struct {
			flags []string
			says  string
		}{{w.store, "on the store"}, {w.server, "through the Management API of " + w.server[1] + ", from --server"}} {
			code, _, stderr := vigil(t, append(tc.args, way.flags...)...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.name) || !strings.Contains(stderr, way.says) {
				t.Errorf("vigil %s %s: exit %d, %q; want %d naming %s and saying %q", strings.Join(tc.args, " "), way.flags[0], code, stderr, cli.ExitUsage, tc.name, way.says)
			}
		}
	}
	// Through the server, a client without the scope is refused by it
	// (exit 3), and told which scope.
	adminID, adminSecret := os.Getenv("VIGIL_CLIENT_ID"), os.Getenv("VIGIL_CLIENT_SECRET")
	creds := strings.Fields(w.run(w.store, "clients", "create", "--name", "reader", "--scopes", "scans:read"))
	t.Setenv("VIGIL_CLIENT_ID", creds[1])
	t.Setenv("VIGIL_CLIENT_SECRET", creds[3])
	if code, _, stderr := vigil(t, append([]string{"tenants", "create", "--name", "x"}, w.server...)...); code != cli.ExitScanFailed || !strings.Contains(stderr, "licensing:admin") {
		t.Errorf("tenants create with a scans:read client: exit %d, %q", code, stderr)
	}
	t.Setenv("VIGIL_CLIENT_ID", "")
	t.Setenv("VIGIL_CLIENT_SECRET", "")
	if code, _, stderr := vigil(t, append([]string{"tenants", "list"}, w.server...)...); code != cli.ExitUsage || !strings.Contains(stderr, "VIGIL_CLIENT_ID") {
		t.Errorf("tenants list through a server without credentials: exit %d, %q", code, stderr)
	}
	t.Setenv("VIGIL_CLIENT_ID", adminID)
	t.Setenv("VIGIL_CLIENT_SECRET", adminSecret)
}

// testChooseTransport: with no flags, a vigil login (or $VIGIL_SERVER)
// is used, else ./vigil-data when it holds a store, else the error says
// what to give; --server with --data is refused.
func testChooseTransport(t *testing.T, w *twoWays) {
	admin := strings.Fields(w.run(w.store, "clients", "create", "--name", "admin-cli", "--scopes", "admin"))
	t.Setenv("VIGIL_CLIENT_ID", admin[1])
	t.Setenv("VIGIL_CLIENT_SECRET", admin[3])
	want := w.run(w.store, "tenants", "list", "--json")
	fails := []string{"tenants", "suspend", "nope-tenant"}

	// Nothing given, nothing here: the error says how to give either.
	t.Chdir(t.TempDir())
	t.Setenv("VIGIL_CONFIG_DIR", t.TempDir())
	if code, _, stderr := vigil(t, "tenants", "list"); code != cli.ExitUsage || !strings.Contains(stderr, "vigil login") || !strings.Contains(stderr, "--data") {
		t.Errorf("no transport: exit %d, %q", code, stderr)
	}
	if code, _, stderr := vigil(t, append(append([]string{"tenants", "list"}, w.server...), w.store...)...); code != cli.ExitUsage || !strings.Contains(stderr, "not both") {
		t.Errorf("--server and --data: exit %d, %q", code, stderr)
	}

	// ./vigil-data holds a store: it is used.
	t.Chdir(filepath.Dir(w.data))
	if code, out, stderr := vigil(t, "tenants", "list", "--json"); code != 0 || out != want {
		t.Errorf("tenants list in the directory of ./vigil-data: exit %d %s\n%s", code, stderr, out)
	}
	if _, _, stderr := vigil(t, fails...); !strings.Contains(stderr, "on the store in vigil-data") {
		t.Errorf("a refusal on ./vigil-data says %q", stderr)
	}

	// $VIGIL_SERVER, then a vigil login, win over ./vigil-data.
	t.Setenv("VIGIL_SERVER", w.server[1])
	if _, _, stderr := vigil(t, append(fails, "--fingerprint", w.server[3])...); !strings.Contains(stderr, "from $VIGIL_SERVER") {
		t.Errorf("a refusal with $VIGIL_SERVER says %q", stderr)
	}
	if code, _, _ := vigil(t, "login", "--server", w.server[1], "--fingerprint", w.server[3]); code != 0 {
		t.Fatalf("login: exit %d", code)
	}
	t.Setenv("VIGIL_SERVER", "")
	t.Setenv("VIGIL_CLIENT_ID", "")
	t.Setenv("VIGIL_CLIENT_SECRET", "")
	if code, out, stderr := vigil(t, "tenants", "list", "--json"); code != 0 || out != want {
		t.Errorf("tenants list after vigil login: exit %d %s\n%s", code, stderr, out)
	}
	if _, _, stderr := vigil(t, fails...); !strings.Contains(stderr, "from vigil login") {
		t.Errorf("a refusal after vigil login says %q", stderr)
	}
	// --data still picks the store.
	if _, _, stderr := vigil(t, append(fails, "--data", "vigil-data")...); !strings.Contains(stderr, "on the store in vigil-data") {
		t.Errorf("a refusal with --data after vigil login says %q", stderr)
	}
}
