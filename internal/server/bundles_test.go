package server_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports/bundle"
)

type bundleJSON struct {
	ID, Version, Ticket, Download string
	ReleaseID                     string `json:"release_id"`
	TenantID                      string `json:"tenant_id"`
	TenantName                    string `json:"tenant_name"`
	SHA256                        string
	Size                          int64
	KeyID                         string `json:"key_id"`
	Files                         []struct {
		Name   string
		Size   int64
		SHA256 string
	}
}

// TestBundlesAPI builds the audit report bundle of a release of real
// scans through the Management API, reads it back, downloads it whole and
// in a range, and verifies it with the keys the server publishes.
func TestBundlesAPI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e, _ := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) { c.PublicURL = publicURL }})
		r, clean, _ := repo(t)
		e.createProject("app", "file://"+r.Dir)
		e.createProduct(product)
		var sc struct{ ID string }
		if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &sc); code != http.StatusAccepted {
			t.Fatalf("POST scan: %d", code)
		}
		if s := e.waitScan(sc.ID); s.Status != "succeeded" {
			t.Fatalf("scan: %s (%s)", s.Status, s.Error)
		}
		var rel releaseJSON
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.0.0", "projects": []string{"app@" + clean}}, &rel); code != http.StatusCreated || rel.Status != "ready" {
			t.Fatalf("release: %d %+v", code, rel)
		}
		var tn struct{ ID, Name string }
		if code := e.do("POST", "/api/v1/tenants", map[string]any{"name": "Acme"}, &tn); code != http.StatusCreated {
			t.Fatalf("tenant: %d", code)
		}

		staff := e.clientWith(server.ScopeReportsAdmin)
		reader := e.clientWith(server.ScopeScansRead, server.ScopeTicketsAdmin)
		path := "/api/v1/releases/" + rel.ID + "/bundles"
		var b, again, got bundleJSON
		if code := e.doWith(staff, "POST", path, map[string]any{"tenant_id": tn.ID}, &b); code != http.StatusCreated {
			t.Fatalf("build: %d", code)
		}
		if b.ID == "" || b.ReleaseID != rel.ID || b.TenantID != tn.ID || b.TenantName != "Acme" || b.Ticket != "none" || b.Version != "1.0.0" ||
			len(b.Files) != 7 || b.Download != "/api/v1/bundles/"+b.ID+"/download" {
			t.Errorf("built: %+v", b)
		}
		if code := e.doWith(staff, "POST", path, map[string]any{"tenant_id": tn.ID}, &again); code != http.StatusOK || again.ID != b.ID || again.SHA256 != b.SHA256 {
			t.Errorf("build again: %d %+v, want 200 and the stored %s", code, again, b.ID)
		}
		if code := e.doWith(staff, "GET", "/api/v1/bundles/"+b.ID, nil, &got); code != http.StatusOK || got.ID != b.ID || got.SHA256 != b.SHA256 || len(got.Files) != 7 {
			t.Errorf("GET: %d %+v", code, got)
		}

		// The download: the stored bytes, an attachment never cached,
		// served in ranges.
		res := e.get(staff, b.Download, nil)
		zipBytes, _ := io.ReadAll(res.Body)
		res.Body.Close()
		sum := sha256.Sum256(zipBytes)
		if res.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != b.SHA256 || int64(len(zipBytes)) != b.Size {
			t.Fatalf("download: %d, %d bytes, SHA-256 %x; want %d bytes, %s", res.StatusCode, len(zipBytes), sum, b.Size, b.SHA256)
		}
		for h, want := range map[string]string{"Content-Type": "application/zip", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if res.Header.Get(h) != want {
				t.Errorf("download %s: %q, want %q", h, res.Header.Get(h), want)
			}
		}
		if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") || !strings.HasSuffix(cd, `.zip"`) {
			t.Errorf("Content-Disposition: %q", cd)
		}
		part := e.get(staff, b.Download, http.Header{"Range": {"bytes=100-199"}})
		chunk, _ := io.ReadAll(part.Body)
		part.Body.Close()
		if part.StatusCode != http.StatusPartialContent || !bytes.Equal(chunk, zipBytes[100:200]) {
			t.Errorf("a range: %d, %d bytes, want 206 and bytes 100-199", part.StatusCode, len(chunk))
		}

		// It verifies with the published keys, and says where to get
		// the one that signed it.
		zipPath := filepath.Join(t.TempDir(), "bundle.zip")
		if err := os.WriteFile(zipPath, zipBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		vr, err := bundle.Verify(t.Context(), zipPath, e.publicKeys("/.well-known/vigil/report-keys"))
		if err != nil || vr.KeyID != b.KeyID {
			t.Fatalf("verify: %+v %v", vr, err)
		}
		readme := readZipFile(t, zipBytes, bundle.ReadmeName)
		if url := publicURL + "/.well-known/vigil/report-keys/" + b.KeyID + ".pem"; !strings.Contains(readme, url) {
			t.Errorf("README.txt does not name %s", url)
		}
		if code, _, _ := e.getPublic("/.well-known/vigil/report-keys/" + b.KeyID + ".pem"); code != http.StatusOK {
			t.Errorf("the README's key URL: %d", code)
		}

		// Scopes, and what is refused.
		var apiErr apiErrorJSON
		if code := e.doWith(reader, "POST", path, map[string]any{"tenant_id": tn.ID}, &apiErr); code != http.StatusForbidden {
			t.Errorf("build without reports:admin: %d", code)
		}
		if res := e.get(reader, b.Download, nil); res.StatusCode != http.StatusForbidden {
			t.Errorf("download without reports:admin: %d", res.StatusCode)
		}
		for _, tc := range []struct {
			path string
			body map[string]any
			want int
		}{
			{"/api/v1/releases/nope/bundles", map[string]any{"tenant_id": tn.ID}, http.StatusNotFound},
			{path, map[string]any{"tenant_id": "nope"}, http.StatusBadRequest},
			{path, map[string]any{}, http.StatusBadRequest},
			{path, map[string]any{"tenant_id": tn.ID, "ticket": "12345"}, http.StatusBadRequest},
			{path, map[string]any{"tenant_id": tn.ID, "extra": 1}, http.StatusBadRequest},
		} {
			if code := e.doWith(staff, "POST", tc.path, tc.body, &apiErr); code != tc.want {
				t.Errorf("POST %s %v: %d %+v, want %d", tc.path, tc.body, code, apiErr, tc.want)
			}
		}
		if code := e.doWith(staff, "GET", "/api/v1/bundles/nope", nil, &apiErr); code != http.StatusNotFound {
			t.Errorf("an unknown bundle: %d", code)
		}
		if res := e.get(staff, "/api/v1/bundles/nope/download", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("an unknown bundle's download: %d", res.StatusCode)
		}
	})
}

// get sends a GET with the client and the headers.
func (e *env) get(c *http.Client, path string, h http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	return res
}

// readZipFile returns one file of a ZIP as text.
func readZipFile(t *testing.T, data []byte, name string) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
