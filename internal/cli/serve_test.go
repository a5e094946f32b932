package cli_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
)

// insecureClient trusts the server's self-signed certificate; the tests
// check the fingerprint is printed, not pinned.
func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- test of a self-signed server
}

// token exchanges client credentials for an access token at base.
func token(t *testing.T, base, id, secret string) {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: base + "/oauth2/token"}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, insecureClient())
	tok, err := cc.Token(ctx)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token for client %s: %v", id, err)
	}
	resp, err := cc.Client(ctx).Get(base + "/api/v1/projects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/projects with the token: %d", resp.StatusCode)
	}
}

// serve runs `vigil serve` on a loopback port over the data directory
// until the test ends; see serveOn.
func serve(t *testing.T, data string) (base string, banner string) {
	t.Helper()
	return serveOn(t, "--data", data)
}

func field(banner, name string) string {
	for _, l := range strings.Split(banner, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestServeAndClients(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")

	base, banner := serve(t, data)
	if fp := field(banner, "TLS certificate SHA-256 fingerprint"); fp == "" {
		t.Errorf("no fingerprint printed:\n%s", banner)
	}
	id, secret := field(banner, "client_id"), field(banner, "client_secret")
	if id == "" || secret == "" {
		t.Fatalf("no admin client printed on the first start:\n%s", banner)
	}
	token(t, base, id, secret)
	resp, err := insecureClient().Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	// A client made from the command line works against the running
	// server (same store).
	code, out, _ := vigil(t, "clients", "create", "--data", data, "--name", "ci", "--scopes", "scans:read,gate:read", "--json")
	if code != 0 {
		t.Fatalf("clients create: exit %d", code)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil || creds.ClientID == "" || creds.ClientSecret == "" {
		t.Fatalf("clients create --json printed %q: %v", out, err)
	}
	token(t, base, creds.ClientID, creds.ClientSecret)

	code, out, _ = vigil(t, "clients", "list", "--data", data)
	if code != 0 || !strings.Contains(out, creds.ClientID) || !strings.Contains(out, "admin") {
		t.Errorf("clients list: exit %d\n%s", code, out)
	}
	if code, _, _ := vigil(t, "clients", "revoke", "--data", data, creds.ClientID); code != 0 {
		t.Errorf("clients revoke: exit %d", code)
	}
	cc := clientcredentials.Config{ClientID: creds.ClientID, ClientSecret: creds.ClientSecret, TokenURL: base + "/oauth2/token"}
	if _, err := cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, insecureClient())); err == nil {
		t.Errorf("a revoked client still gets tokens")
	}
	if code, _, _ := vigil(t, "clients", "create", "--data", data, "--name", "x", "--scopes", "nope"); code != cli.ExitUsage {
		t.Errorf("unknown scope: exit %d, want %d", code, cli.ExitUsage)
	}
	if code, out, _ := vigil(t, "migrate", "--data", data); code != 0 || !strings.Contains(out, "sqlite schema at version") || !strings.Contains(out, "job queue migrated") {
		t.Errorf("migrate: exit %d: %s", code, out)
	}
}
