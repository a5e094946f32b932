package cli_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/httpx/httpxtest"
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

// issuer returns the "iss" of an access token of the server at base
// (read without verifying: the server verified it when it made it).
func issuer(t *testing.T, base, id, secret string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: base + "/oauth2/token"}
	tok, err := cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, insecureClient()))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWS: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Iss string }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Iss
}

func TestServePublicURLAndAdmissionClientCA(t *testing.T) {
	dir := t.TempDir()

	// Without --public-url the issuer is the address served on.
	base, banner := serve(t, filepath.Join(dir, "default"))
	if got := issuer(t, base, field(banner, "client_id"), field(banner, "client_secret")); got != base {
		t.Errorf("default issuer %q, want %q", got, base)
	}
	if !strings.Contains(banner, "public URL (token issuer): "+base) {
		t.Errorf("banner does not print the public URL:\n%s", banner)
	}

	ca := httpxtest.NewCA(t, "test client CA")
	caFile := ca.WriteFile(t, dir)
	const public = "https://vigil.example.test:9443"
	base, banner = serveOn(t, "--data", filepath.Join(dir, "mtls"), "--public-url", public+"/", "--admission-client-ca", caFile)
	id, secret := field(banner, "client_id"), field(banner, "client_secret")
	if got := issuer(t, base, id, secret); got != public {
		t.Errorf("issuer %q, want %q", got, public)
	}
	// The API works without a client certificate.
	token(t, base, id, secret)

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",
		"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
		"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
		"spec":{"containers":[{"name":"c","image":"registry.example.com/app@sha256:` + strings.Repeat("a", 64) + `"}]}}}}`
	post := func(c *http.Client) (int, []byte, error) {
		resp, err := c.Post(base+"/admission/v1/validate", "application/json", strings.NewReader(review))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, nil
	}

	// No client certificate: 401 with a JSON error.
	code, body, err := post(insecureClient())
	var apiErr struct{ Code string }
	if err != nil || code != http.StatusUnauthorized || json.Unmarshal(body, &apiErr) != nil || apiErr.Code != "CLIENT_CERT_REQUIRED" {
		t.Errorf("admission without a client certificate: %d %s %v; want 401 CLIENT_CERT_REQUIRED", code, body, err)
	}

	// A certificate from the CA: the review is answered (denied, as the
	// image was never scanned).
	withCert := insecureClient()
	withCert.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{ca.Client(t, "kube-apiserver")}
	code, body, err = post(withCert)
	var out struct {
		Response struct {
			UID     string
			Allowed bool
		}
	}
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &out) != nil || out.Response.UID != "u-1" || out.Response.Allowed {
		t.Errorf("admission with a client certificate: %d %s %v; want 200, uid u-1, denied", code, body, err)
	}

	// A certificate from another CA fails the handshake.
	cert := httpxtest.NewCA(t, "rogue").Client(t, "kube-apiserver")
	bad := insecureClient()
	bad.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	if code, _, err := post(bad); err == nil {
		t.Errorf("admission with a certificate of another CA: %d, want a failed handshake", code)
	}
}

func TestServeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--public-url", "vigil.example.com"},
		{"--public-url", "ftp://vigil.example.com"},
		{"--public-url", "https://user:pw@vigil.example.com"},
		{"--http", "--admission-client-ca", filepath.Join(dir, "ca.pem")},
		{"--admission-client-ca", filepath.Join(dir, "missing.pem")},
		{"--activation-interval", "0s"},
		{"--activation-burst", "0"},
	} {
		all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data")}, args...)
		code, _, stderr := vigil(t, all...)
		if code != cli.ExitUsage || !strings.Contains(stderr, strings.TrimPrefix(args[len(args)-2], "--")) {
			t.Errorf("vigil %s: exit %d, %q; want %d naming the flag", strings.Join(args, " "), code, stderr, cli.ExitUsage)
		}
	}
}
