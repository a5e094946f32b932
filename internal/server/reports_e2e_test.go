package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/vigil-sec/vigil/internal/cli"
	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// The customer's path end to end, on both databases: real scans of a git
// repository and of an image on a loopback registry → a release → the
// tenant's ticket → staff approval, answered with a secure link → its
// landing page (no download used) → the download → `vigil verify` passes,
// and fails naming the file when one byte of it changes → the download
// limit → revoked: 410. An unentitled product is refused at opening, and
// another tenant sees neither the ticket nor its links.
func TestReportsEndToEnd(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) { c.PublicURL = publicURL }})
		f := newTicketFixture(t, e) // products app, agent, legacy; acme holds app and agent, globex app

		// Real scans: a commit of a git repository and an image.
		r, clean, _ := repo(t)
		e.createProject("app", "file://"+r.Dir)
		reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer reg.Close()
		ref := strings.TrimPrefix(reg.URL, "http://") + "/team/app:v1"
		digest := pushRandom(t, ref, 2)
		for _, body := range []map[string]any{{"project": "app", "commit": clean}, {"image": ref}} {
			var sc struct{ ID string }
			if code := e.do("POST", "/api/v1/scans", body, &sc); code != http.StatusAccepted {
				t.Fatalf("POST scan %v: %d", body, code)
			}
			if s := e.waitScan(sc.ID); s.Status != "succeeded" {
				t.Fatalf("scan %v: %s (%s)", body, s.Status, s.Error)
			}
		}
		var rel releaseJSON
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": "app", "version": "1.4.0",
			"projects": []string{"app@" + clean}, "images": []string{strings.TrimSuffix(ref, ":v1") + "@" + digest}}, &rel); code != http.StatusCreated || rel.Status != "ready" {
			t.Fatalf("release: %d %+v", code, rel)
		}

		// An unentitled product cannot be asked for.
		var apiErr apiErrorJSON
		if code := e.doWith(f.globexC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"agent"}, "subject": "Report", "message": "Please."}, &apiErr); code < 400 || !strings.Contains(apiErr.Message, "agent") {
			t.Errorf("globex asking for agent: %d %+v, want a refusal naming it", code, apiErr)
		}

		// The ticket, approved by staff: the answer holds the link.
		var tk ticketJSON
		if code := e.doWith(f.acmeC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"app"}, "subject": "Audit report", "message": "The latest, please."}, &tk); code != http.StatusCreated {
			t.Fatalf("open: %d", code)
		}
		var approved struct {
			Status    string
			Links     []linkJSON
			LinkError string `json:"link_error"`
			History   []struct{ Type string }
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/tickets/"+tk.ID+"/approve", nil, &approved); code != http.StatusOK || approved.Status != "approved" {
			t.Fatalf("approve: %d %+v", code, approved)
		}
		if len(approved.Links) != 1 || approved.LinkError != "" {
			t.Fatalf("approval answered links %+v, error %q: want one link", approved.Links, approved.LinkError)
		}
		link := approved.Links[0]
		if link.Token == "" || link.URL != publicURL+"/r/"+link.Token || link.DownloadsLeft != 5 || link.Status != "active" {
			t.Errorf("link %+v", link)
		}
		if types := historyTypes(approved.History); !strings.Contains(types, "approved") || !strings.Contains(types, "link_created") {
			t.Errorf("history %s, want the approval and the link", types)
		}

		// Another tenant sees neither the ticket nor its links.
		if code := e.doWith(f.globexC, "GET", "/api/v1/tickets/"+tk.ID, nil, nil); code != http.StatusNotFound {
			t.Errorf("globex reading acme's ticket: %d, want 404", code)
		}
		if code := e.doWith(f.globexC, "GET", "/api/v1/tickets/"+tk.ID+"/links", nil, nil); code != http.StatusNotFound {
			t.Errorf("globex listing acme's links: %d, want 404", code)
		}

		// The landing page uses no download.
		lf := &linkFixture{ticketFixture: f}
		code, _, page := lf.page("GET", "/r/"+link.Token)
		if code != http.StatusOK || !strings.Contains(string(page), "1.4.0") || !strings.Contains(string(page), "Acme") || !strings.Contains(string(page), "5") {
			t.Fatalf("landing page: %d\n%.500s", code, page)
		}
		listLinks := func() linkJSON {
			t.Helper()
			var page struct{ Links []linkJSON }
			if code := e.doWith(f.acmeC, "GET", "/api/v1/tickets/"+tk.ID+"/links", nil, &page); code != http.StatusOK || len(page.Links) != 1 {
				t.Fatalf("links: %d %+v", code, page)
			}
			return page.Links[0]
		}
		if l := listLinks(); l.Downloads != 0 || l.Token != "" {
			t.Errorf("after the page: %+v, want no download used and no token shown", l)
		}

		// The download verifies with vigil verify, against the server's
		// published keys.
		code, h, zipBytes := lf.page("POST", "/r/"+link.Token+"/download")
		if code != http.StatusOK || h.Get("Content-Type") != "application/zip" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
			t.Fatalf("download: %d %v", code, h)
		}
		dir := t.TempDir()
		zipPath := filepath.Join(dir, "report.zip")
		if err := os.WriteFile(zipPath, zipBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, pemKeys := e.getPublic("/.well-known/vigil/report-keys.pem")
		keyPath := filepath.Join(dir, "report-keys.pem")
		if err := os.WriteFile(keyPath, pemKeys, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out := vigilCLI(t, "verify", "--key", keyPath, zipPath); code != 0 {
			t.Fatalf("vigil verify of the download: exit %d\n%s", code, out)
		}
		// One byte changed in one file: verify fails naming it.
		extracted := filepath.Join(dir, "x")
		unzip(t, zipBytes, extracted)
		sbom := filepath.Join(extracted, "sbom.cdx.json")
		b, err := os.ReadFile(sbom)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x01
		if err := os.WriteFile(sbom, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out := vigilCLI(t, "verify", "--key", keyPath, extracted); code != 1 || !strings.Contains(out, "sbom.cdx.json") {
			t.Errorf("vigil verify of a changed file: exit %d, want 1 naming sbom.cdx.json\n%s", code, out)
		}

		// Four more downloads use the link up: then 410.
		for i := 2; i <= 5; i++ {
			if code, _, _ := lf.page("POST", "/r/"+link.Token+"/download"); code != http.StatusOK {
				t.Fatalf("download %d: %d", i, code)
			}
		}
		if l := listLinks(); l.Downloads != 5 || l.DownloadsLeft != 0 {
			t.Errorf("after five downloads: %+v", l)
		}
		if code, _, body := lf.page("POST", "/r/"+link.Token+"/download"); code != http.StatusGone {
			t.Errorf("a sixth download: %d %s, want 410", code, body)
		}

		// Reissued by staff, then revoked: 410 saying so.
		var re linkJSON
		if code := e.doWith(f.staff, "POST", "/api/v1/links/"+link.ID+"/reissue", nil, &re); code != http.StatusCreated || re.Token == "" {
			t.Fatalf("reissue: %d %+v", code, re)
		}
		if code, _, _ := lf.page("GET", "/r/"+re.Token); code != http.StatusOK {
			t.Errorf("the reissued link: %d", code)
		}
		if code := e.doWith(f.staff, "POST", "/api/v1/links/"+re.ID+"/revoke", map[string]any{"reason": "sent to the wrong person"}, nil); code != http.StatusOK {
			t.Fatalf("revoke: %d", code)
		}
		if code, _, body := lf.page("GET", "/r/"+re.Token); code != http.StatusGone || !strings.Contains(strings.ToLower(string(body)), "revoked") {
			t.Errorf("a revoked link: %d %.300s, want 410 saying revoked", code, body)
		}
	})
}

// historyTypes lists a ticket's event types, for messages.
func historyTypes(h []struct{ Type string }) string {
	var s []string
	for _, e := range h {
		s = append(s, e.Type)
	}
	return strings.Join(s, ",")
}

// vigilCLI runs the vigil command in process.
func vigilCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Main(context.Background(), args, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &out})
	return code, out.String()
}

// unzip writes a ZIP's files into dir.
func unzip(t *testing.T, data []byte, dir string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
