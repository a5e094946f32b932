package cli_test

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/bundle/bundletest"
)

// TestLinksCommands runs `vigil links` against a server with a bundle
// store, as staff and as a customer's client: list, access, reissue and
// revoke, --json, and the exit codes.
func TestLinksCommands(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := bundletest.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, server.SealKeySize)
	rand.Read(key)
	srv, err := server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key, Bundles: bs, Logger: storetest.Logger(t),
		Outbound: &httpx.OutboundPolicy{Schemes: []string{"https"}}})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := srv.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	lic := srv.Licensing()
	if _, err := lic.CreateProduct(ctx, "app", "App"); err != nil {
		t.Fatal(err)
	}
	tn, err := lic.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lic.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "app", Seats: 1}); err != nil {
		t.Fatal(err)
	}
	staff := reports.Actor{ClientID: admin.ClientID, Staff: true}
	tk, err := srv.Tickets().Open(ctx, staff, reports.NewTicket{TenantID: tn.ID, Products: []string{"app"}, Subject: "Report", Message: "Please."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Tickets().Approve(ctx, staff, "1", ""); err != nil {
		t.Fatal(err)
	}
	b, err := bs.Add(ctx, reports.Bundle{TenantID: tn.ID, TenantName: "Acme", TicketID: tk.ID, Ticket: "1", ProductID: "app", Version: "3.1.0"},
		bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX"}`)))
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := srv.Links().Create(ctx, staff, reports.NewLink{Ticket: "1", BundleID: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	customerID, customerSecret, err := srv.OAuth().CreateTenantClient(ctx, "acme portal", tn.ID, []string{server.ScopeTicketsWrite})
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv("VIGIL_SERVER", ts.URL)
	as := func(id, secret string) {
		t.Setenv("VIGIL_CLIENT_ID", id)
		t.Setenv("VIGIL_CLIENT_SECRET", secret)
	}
	as(admin.ClientID, admin.ClientSecret)

	if code, out, _ := vigil(t, "links", "list", "--ticket", "1"); code != 0 || !strings.Contains(out, l.ID) || !strings.Contains(out, "active") ||
		!strings.Contains(out, "0 of 5") || !strings.Contains(out, "3.1.0") {
		t.Errorf("links list: exit %d\n%s", code, out)
	}
	var list struct {
		Links []struct{ ID, Status string } `json:"links"`
	}
	vigilJSON(t, &list, "links", "list", "--ticket", "1", "--json")
	if len(list.Links) != 1 || list.Links[0].ID != l.ID {
		t.Errorf("links list --json: %+v", list)
	}

	// Reissue: a new token, printed once; the old link cannot be reissued again.
	code, out, _ := vigil(t, "links", "reissue", l.ID, "--max-downloads", "3", "--expires-in", "48h")
	if code != 0 || !strings.Contains(out, "replaces "+l.ID) || !strings.Contains(out, "token:") || !strings.Contains(out, "downloads: 3") {
		t.Fatalf("links reissue: exit %d\n%s", code, out)
	}
	token := strings.TrimSpace(strings.SplitN(strings.SplitN(out, "token:", 2)[1], "\n", 2)[0])
	if len(token) != reports.TokenLen {
		t.Errorf("printed token %q", token)
	}
	if v, err := srv.Links().View(ctx, token, reports.Visitor{Address: "192.0.2.1"}); err != nil || v.Link.Replaces != l.ID {
		t.Errorf("the printed token: %+v, %v", v.Link, err)
	}
	if code, _, stderr := vigil(t, "links", "reissue", l.ID); code != cli.ExitUsage || !strings.Contains(stderr, "reissued already") {
		t.Errorf("reissue the old link again: exit %d %q", code, stderr)
	}

	// The access log of the new link shows the view.
	vigilJSON(t, &list, "links", "list", "--ticket", "1", "--json")
	newID := list.Links[1].ID
	if code, out, _ := vigil(t, "links", "access", newID); code != 0 || !strings.Contains(out, "view") || !strings.Contains(out, "192.0.2.1") {
		t.Errorf("links access: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"links", "list"},
		{"links", "reissue", newID, "--expires-in", "800h"},
		{"links", "reissue", newID, "--max-downloads", "-1"},
		{"links", "revoke", "0190f5e8-0000-7000-8000-000000000000"},
		{"links", "revoke"},
		{"links", "access", "nope"},
	} {
		if code, _, _ := vigil(t, args...); code != cli.ExitUsage {
			t.Errorf("vigil %s: exit %d, want %d", strings.Join(args, " "), code, cli.ExitUsage)
		}
	}

	// The customer reads its links, cannot revoke them.
	as(customerID, customerSecret)
	if code, out, _ := vigil(t, "links", "list", "--ticket", "1"); code != 0 || !strings.Contains(out, newID) {
		t.Errorf("the customer's links list: exit %d\n%s", code, out)
	}
	if code, _, stderr := vigil(t, "links", "revoke", newID); code == 0 || !strings.Contains(stderr, "INSUFFICIENT_SCOPE") {
		t.Errorf("the customer revokes: exit %d %q", code, stderr)
	}

	as(admin.ClientID, admin.ClientSecret)
	if code, out, _ := vigil(t, "links", "revoke", newID, "--reason", "sent to the wrong address"); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("links revoke: exit %d\n%s", code, out)
	}
	if code, _, stderr := vigil(t, "links", "revoke", newID); code != cli.ExitUsage || !strings.Contains(stderr, "revoked already") {
		t.Errorf("revoke twice: exit %d %q", code, stderr)
	}
	if _, err := srv.Links().View(ctx, token, reports.Visitor{Address: "192.0.2.1"}); err == nil {
		t.Error("a revoked link still serves")
	}
}
