package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
)

type releaseJSON struct {
	ID        string
	ProductID string `json:"product_id"`
	Version   string
	Status    string
	Error     string
	Items     []struct {
		Kind, Project, Commit, Image, Digest string
		ScanID                               string `json:"scan_id"`
		ScanStatus                           string `json:"scan_status"`
	}
}

type missingJSON struct {
	Code, Message string
	Missing       []struct{ Target, Status string }
}

const product = "com.example.app"

// TestReleases makes releases of a product from real scans of a real
// repository and of an image in a loopback registry: explicit commits,
// the default branch's latest scan, production projects, missing scans
// refused (named) or asked for (pending, then ready or failed), versions
// made once.
func TestReleases(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := setup(t, dialect)
		ctx := context.Background()
		r, clean, weak := repo(t)
		e.createProject("app", "file://"+r.Dir)
		e.createProduct(product)
		fx := imagetest.New(t)

		// Scan the clean commit (on main, behind its head) and the image.
		scan := func(body map[string]any) string {
			var ref struct{ ID string }
			if code := e.do("POST", "/api/v1/scans", body, &ref); code != http.StatusAccepted {
				t.Fatalf("POST scan %v: %d", body, code)
			}
			if s := e.waitScan(ref.ID); s.Status != "succeeded" {
				t.Fatalf("scan %v: %s (%s)", body, s.Status, s.Error)
			}
			return ref.ID
		}
		cleanScan := scan(map[string]any{"project": "app", "commit": clean})
		imageScan := scan(map[string]any{"image": fx.Ref})
		image := fx.Ref + "@" + fx.Digest

		// Explicit commits and images.
		var rel releaseJSON
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.0.0",
			"projects": []string{"app@" + clean}, "images": []string{image}}, &rel); code != http.StatusCreated {
			t.Fatalf("create 1.0.0: %d", code)
		}
		if rel.Status != "ready" || rel.Version != "1.0.0" || rel.ProductID != product || len(rel.Items) != 2 {
			t.Fatalf("1.0.0: %+v", rel)
		}
		if it := rel.Items[0]; it.Kind != "commit" || it.Project != "app" || it.Commit != clean || it.ScanID != cleanScan || it.ScanStatus != "succeeded" {
			t.Errorf("1.0.0's commit: %+v", it)
		}
		if it := rel.Items[1]; it.Kind != "image" || it.Image != fx.Ref || it.Digest != fx.Digest || it.ScanID != imageScan || it.ScanStatus != "succeeded" {
			t.Errorf("1.0.0's image: %+v", it)
		}
		var got releaseJSON
		if code := e.do("GET", "/api/v1/releases/"+rel.ID, nil, &got); code != 200 || got.ID != rel.ID || got.Status != "ready" || len(got.Items) != 2 {
			t.Errorf("GET 1.0.0: %d %+v", code, got)
		}

		// A version is made once; the product must exist.
		var apiErr missingJSON
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.0.0", "images": []string{image}}, &apiErr); code != http.StatusConflict {
			t.Errorf("1.0.0 again: %d %+v, want 409", code, apiErr)
		}
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": "com.example.nope", "version": "1.0.0", "images": []string{image}}, &apiErr); code != http.StatusNotFound || !strings.Contains(apiErr.Message, "com.example.nope") {
			t.Errorf("an unknown product: %d %+v, want 404 naming it", code, apiErr)
		}
		for _, bad := range []map[string]any{
			{"product_id": product, "version": "1.0 beta", "images": []string{image}},
			{"product_id": product, "version": "2", "projects": []string{"app@abc123"}},
			{"product_id": product, "version": "2", "images": []string{fx.Ref}},
			{"product_id": product, "version": "2", "projects": []string{"app@" + clean, "app@" + clean}},
			{"product_id": product, "version": "2"}, // no production project yet
		} {
			if code := e.do("POST", "/api/v1/releases", bad, &apiErr); code != http.StatusBadRequest {
				t.Errorf("%v: %d %+v, want 400", bad, code, apiErr)
			}
		}
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "2", "projects": []string{"nope"}}, &apiErr); code != http.StatusNotFound || !strings.Contains(apiErr.Message, `"nope"`) {
			t.Errorf("an unknown project: %d %+v, want 404 naming it", code, apiErr)
		}

		// The default branch's latest succeeded scan: the clean commit.
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.0.1", "projects": []string{"app"}}, &rel); code != http.StatusCreated {
			t.Fatalf("create 1.0.1: %d", code)
		}
		if rel.Status != "ready" || len(rel.Items) != 1 || rel.Items[0].Commit != clean || rel.Items[0].ScanID != cleanScan {
			t.Errorf("1.0.1 from the default branch: %+v, want the clean commit's scan", rel)
		}

		// What has no succeeded scan is named, and nothing is queued.
		scans := countScans(t, e.db)
		const unknownDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.1.0",
			"projects": []string{"app@" + weak}, "images": []string{image, fx.Registry + "/vigil/other:v2@" + unknownDigest}}, &apiErr)
		if code != http.StatusBadRequest || apiErr.Code != "MISSING_SCANS" || len(apiErr.Missing) != 2 {
			t.Fatalf("missing scans: %d %+v, want 400 MISSING_SCANS naming two", code, apiErr)
		}
		if m := apiErr.Missing[0]; m.Target != "app@"+weak || m.Status != "never scanned" {
			t.Errorf("the missing commit: %+v", m)
		}
		if m := apiErr.Missing[1]; m.Target != fx.Registry+"/vigil/other:v2@"+unknownDigest || m.Status != "never scanned" {
			t.Errorf("the missing image: %+v", m)
		}
		if !strings.Contains(apiErr.Message, "app@"+weak) || !strings.Contains(apiErr.Message, unknownDigest) {
			t.Errorf("the message does not name what is missing: %s", apiErr.Message)
		}
		// An image on a registry the server may not reach is refused
		// before anything is queued.
		private := "10.1.2.3:5000/app:1@" + unknownDigest
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.1.0",
			"projects": []string{"app@" + weak}, "images": []string{private}, "scan_missing": true}, &apiErr); code != http.StatusBadRequest || !strings.Contains(apiErr.Message, "10.1.2.3") {
			t.Errorf("an image the outbound policy refuses: %d %+v, want 400 naming it", code, apiErr)
		}
		if n := countScans(t, e.db); n != scans {
			t.Errorf("refused releases queued %d scans", n-scans)
		}

		// Asked for, the missing scan is queued: pending, then ready once
		// the worker has run it.
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.1.0",
			"projects": []string{"app@" + weak}, "images": []string{image}, "scan_missing": true}, &rel); code != http.StatusCreated {
			t.Fatalf("create 1.1.0 with scan_missing: %d", code)
		}
		if rel.Status != "pending" || rel.Items[0].Commit != weak || rel.Items[0].ScanID == "" {
			t.Errorf("1.1.0 with its scan queued: %+v, want pending", rel)
		}
		if latest, err := e.srv.Reports().LatestRelease(ctx, product); err != nil || latest.Version != "1.0.1" {
			t.Errorf("latest while 1.1.0 is pending: %+v %v, want 1.0.1", latest, err)
		}
		if rel = e.waitRelease(rel.ID); rel.Status != "ready" || rel.Items[0].ScanStatus != "succeeded" {
			t.Fatalf("1.1.0 after its scan: %+v, want ready", rel)
		}
		if latest, err := e.srv.Reports().LatestRelease(ctx, product); err != nil || latest.ID != rel.ID || latest.Status != reports.ReleaseReady {
			t.Errorf("latest once 1.1.0 is ready: %+v %v", latest, err)
		}

		// A scan that fails fails its release, which names it.
		missing := strings.Repeat("e", 40)
		if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "1.2.0-rc.1",
			"projects": []string{"app@" + missing}, "scan_missing": true}, &rel); code != http.StatusCreated {
			t.Fatalf("create 1.2.0-rc.1: %d", code)
		}
		if rel = e.waitRelease(rel.ID); rel.Status != "failed" || !strings.Contains(rel.Error, "app@"+missing) {
			t.Errorf("a release whose scan failed: %+v, want failed naming the commit", rel)
		}
		if latest, err := e.srv.Reports().LatestRelease(ctx, product); err != nil || latest.Version != "1.1.0" {
			t.Errorf("latest after a failed release: %+v %v, want 1.1.0", latest, err)
		}

		// With nothing named, the product's production projects: the
		// newest succeeded scan of app's default branch is now weak's. A
		// retry with the same Idempotency-Key gets the first answer.
		if code := e.do("PATCH", "/api/v1/projects/app", map[string]any{"products": []string{product}, "production": true}, nil); code != 200 {
			t.Fatalf("PATCH app: %d", code)
		}
		first := e.postKey(e.api, "/api/v1/releases", "release-2.0.0", map[string]any{"product_id": product, "version": "2.0.0"})
		if first.code != http.StatusCreated {
			t.Fatalf("create 2.0.0: %d %s", first.code, first.body)
		}
		if again := e.postKey(e.api, "/api/v1/releases", "release-2.0.0", map[string]any{"product_id": product, "version": "2.0.0"}); again.code != http.StatusCreated || again.body != first.body || again.header.Get(server.IdempotentReplayedHeader) != "true" {
			t.Errorf("a retry of 2.0.0: %d %s, want the first answer replayed", again.code, again.body)
		}
		if err := json.Unmarshal([]byte(first.body), &rel); err != nil {
			t.Fatal(err)
		}
		if rel.Status != "ready" || len(rel.Items) != 1 || rel.Items[0].Project != "app" || rel.Items[0].Commit != weak {
			t.Errorf("2.0.0 from the production projects: %+v, want app at %s", rel, weak)
		}

		// Lists, oldest first, one page at a time.
		var page struct {
			Releases   []releaseJSON
			NextCursor string `json:"next_cursor"`
		}
		var versions []string
		for cursor := ""; ; cursor = page.NextCursor {
			if code := e.do("GET", "/api/v1/releases?product="+product+"&limit=2&cursor="+cursor, nil, &page); code != 200 {
				t.Fatalf("list: %d", code)
			}
			for _, r := range page.Releases {
				versions = append(versions, r.Version+":"+r.Status)
			}
			if page.NextCursor == "" {
				break
			}
		}
		if want := "1.0.0:ready 1.0.1:ready 1.1.0:ready 1.2.0-rc.1:failed 2.0.0:ready"; strings.Join(versions, " ") != want {
			t.Errorf("the releases: %v, want %s", versions, want)
		}
		if code := e.do("GET", "/api/v1/releases?product=com.example.nope", nil, &apiErr); code != http.StatusNotFound {
			t.Errorf("releases of an unknown product: %d", code)
		}
		if code := e.do("GET", "/api/v1/releases", nil, &apiErr); code != http.StatusBadRequest {
			t.Errorf("releases of no product: %d", code)
		}
		if code := e.do("GET", "/api/v1/releases/nope", nil, &apiErr); code != http.StatusNotFound {
			t.Errorf("an unknown release: %d", code)
		}

		// A reader reads; making a release needs projects:admin.
		id, secret, err := e.srv.OAuth().CreateClient(ctx, "reader", []string{"scans:read"})
		if err != nil {
			t.Fatal(err)
		}
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.ts.URL + "/oauth2/token"}
		reader := cc.Client(context.WithValue(ctx, oauth2.HTTPClient, e.ts.Client()))
		if code := e.doWith(reader, "GET", "/api/v1/releases/"+rel.ID, nil, nil); code != 200 {
			t.Errorf("scans:read reading a release: %d", code)
		}
		if code := e.doWith(reader, "POST", "/api/v1/releases", map[string]any{"product_id": product, "version": "3"}, nil); code != http.StatusForbidden {
			t.Errorf("scans:read making a release: %d, want 403", code)
		}

		// Releases keep their scans: the project cannot be deleted.
		if code := e.do("DELETE", "/api/v1/projects/app", nil, &apiErr); code != http.StatusConflict || !strings.Contains(apiErr.Message, "release") {
			t.Errorf("delete a project in releases: %d %+v, want 409", code, apiErr)
		}
		if _, err := e.srv.Reports().LatestRelease(ctx, "com.example.nope"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("latest of an unknown product: %v", err)
		}
	})
}

// waitRelease polls the release until it is no longer pending. The
// deadline is generous: it catches a hang, not slowness.
func (e *env) waitRelease(id string) releaseJSON {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var r releaseJSON
		if code := e.do("GET", "/api/v1/releases/"+id, nil, &r); code != 200 {
			e.t.Fatalf("GET release %s: %d", id, code)
		}
		if r.Status != "pending" {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("release %s still pending after 5 minutes", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
