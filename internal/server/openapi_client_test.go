package server_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	// The generated client's runtime: the program the test generates
	// imports it, and this keeps it in go.mod.
	_ "github.com/oapi-codegen/runtime"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
)

// clientProgram calls the running server through the client that
// oapi-codegen generated from the server's own OpenAPI document, and
// prints what it got.
const clientProgram = `package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
)

func main() {
	ctx := context.Background()
	ca, err := os.ReadFile(os.Getenv("VIGIL_CA"))
	check(err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	bearer := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+os.Getenv("VIGIL_TOKEN"))
		return nil
	}
	c, err := NewClientWithResponses(os.Getenv("VIGIL_SERVER"), WithHTTPClient(hc), WithRequestEditorFn(bearer))
	check(err)
	out := map[string]any{}

	key := IdempotencyKey("generated-1")
	t, err := c.PostTenantsWithResponse(ctx, &PostTenantsParams{IdempotencyKey: &key}, PostTenantsJSONRequestBody{Name: "Generated Corp"})
	check(err)
	out["tenant_status"], out["tenant"] = t.StatusCode(), t.JSON201

	l, err := c.GetTenantsWithResponse(ctx, &GetTenantsParams{})
	check(err)
	out["tenants"] = l.JSON200

	cl, err := c.PostClientsWithResponse(ctx, &PostClientsParams{}, PostClientsJSONRequestBody{Name: "generated", Scopes: []NewOAuthClientRequestScopes{"scans:read"}})
	check(err)
	out["client_status"], out["client"] = cl.StatusCode(), cl.JSON201

	k, err := c.PostReportKeysRotateWithResponse(ctx, &PostReportKeysRotateParams{})
	check(err)
	out["key"] = k.JSON201
	ks, err := c.GetReportKeysWithResponse(ctx)
	check(err)
	out["keys"] = ks.JSON200

	p, err := c.GetProjectsByNameWithResponse(ctx, "no-such-project")
	check(err)
	out["missing_status"], out["missing"] = p.StatusCode(), p.JSON404

	check(json.NewEncoder(os.Stdout).Encode(out))
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
`

// TestGeneratedClientCallsTheServer generates a Go client from the
// server's OpenAPI 3.1 document with oapi-codegen (a tool of this module,
// at the version go.mod pins), compiles it, and calls the running server
// with it: a create (with an Idempotency-Key header), a list, the clients
// and report keys routes, and an error answer decoded into the document's
// Error. A document a generator cannot turn into compiling code (a schema
// named like the generator's own types, an operation without an
// operationId) fails here.
func TestGeneratedClientCallsTheServer(t *testing.T) {
	e := setup(t, store.SQLite)
	ctx := context.Background()

	res, err := e.ts.Client().Get(e.ts.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /api/v1/openapi.json: %d %v", res.StatusCode, err)
	}

	// Inside the module (so that the client's runtime comes from go.mod),
	// in a directory the go command's patterns skip.
	dir, err := os.MkdirTemp(".", "_oapigen-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	specFile := filepath.Join(t.TempDir(), "openapi.json")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	for path, b := range map[string][]byte{
		specFile:                      spec,
		filepath.Join(dir, "main.go"): []byte(clientProgram),
		ca:                            pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.ts.Certificate().Raw}),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gen := exec.Command("go", "tool", "oapi-codegen", "-generate", "types,client", "-package", "main",
		"-o", filepath.Join(dir, "client.gen.go"), specFile)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}

	id, secret, err := e.srv.OAuth().CreateClient(ctx, "generated-client-test", []string{server.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, e.ts.Client()))
	if err != nil {
		t.Fatal(err)
	}
	run := exec.Command("go", "run", "./"+filepath.ToSlash(dir))
	run.Env = append(os.Environ(), "VIGIL_SERVER="+e.ts.URL, "VIGIL_TOKEN="+tok.AccessToken, "VIGIL_CA="+ca)
	var stderr strings.Builder
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil {
		t.Fatalf("the generated client's program: %v\n%s", err, stderr.String())
	}
	t.Logf("the generated client got: %s", out)

	var got struct {
		TenantStatus int `json:"tenant_status"`
		Tenant       struct{ ID, Name string }
		Tenants      struct {
			Tenants []struct{ ID string }
		}
		ClientStatus int `json:"client_status"`
		Client       struct {
			ClientID     string   `json:"client_id"`
			ClientSecret string   `json:"client_secret"`
			Scopes       []string `json:"scopes"`
		}
		Key  struct{ Kid string }
		Keys struct {
			Keys []struct {
				Kid     string
				Current bool
			}
		}
		MissingStatus int `json:"missing_status"`
		Missing       struct{ Code, Message string }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.TenantStatus != 201 || got.Tenant.Name != "Generated Corp" {
		t.Errorf("create tenant through the generated client: %d %+v", got.TenantStatus, got.Tenant)
	}
	if tn, err := e.srv.Licensing().GetTenant(ctx, got.Tenant.ID); err != nil || tn.Name != "Generated Corp" {
		t.Errorf("the tenant the generated client made: %+v %v", tn, err)
	}
	if len(got.Tenants.Tenants) != 1 || got.Tenants.Tenants[0].ID != got.Tenant.ID {
		t.Errorf("list tenants through the generated client: %+v", got.Tenants)
	}
	if got.ClientStatus != 201 || got.Client.ClientID == "" || got.Client.ClientSecret == "" || strings.Join(got.Client.Scopes, ",") != "scans:read" {
		t.Errorf("create client through the generated client: %d %+v", got.ClientStatus, got.Client)
	}
	if len(got.Keys.Keys) != 1 || got.Keys.Keys[0].Kid != got.Key.Kid || !got.Keys.Keys[0].Current {
		t.Errorf("report keys through the generated client: %+v, rotated %+v", got.Keys, got.Key)
	}
	if got.MissingStatus != 404 || got.Missing.Code != "NOT_FOUND" || got.Missing.Message == "" {
		t.Errorf("an unknown project through the generated client: %d %+v", got.MissingStatus, got.Missing)
	}
}
