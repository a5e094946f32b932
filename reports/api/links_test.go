package api_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/internal/tooltest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/api"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/bundle/bundletest"
)

// clock is the services' clock, which a test moves on.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// fixture is the links' pages over HTTPS (httptest), on a real store and
// the licensing and ticket services, with acme's approved ticket 1 and a
// signed bundle of product app built for it (bundletest), of some
// incompressible bytes so that it can be cut into ranges.
type fixture struct {
	t       *testing.T
	clock   *clock
	db      *store.DB
	links   *reports.LinkService
	bundles *bundletest.Store
	bundle  reports.Bundle
	zip     []byte // the bundle's bytes
	srv     *httptest.Server
	staff   reports.Actor
}

func setup(t *testing.T, dialect store.Dialect, cfg api.LinksConfig) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{t: t, clock: &clock{at: time.Now()}, db: storetest.Open(t, dialect), staff: reports.Actor{ClientID: "staff-client", Staff: true}}
	lcfg := licensing.DefaultConfig()
	lcfg.Secret = []byte("reports-api-test-secret-32-bytes")
	lcfg.Logger, lcfg.Now = storetest.Logger(t), f.clock.now
	lic, err := licensing.New(ctx, f.db, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	tickets, err := reports.NewTicketService(f.db, lic, reports.TicketConfig{Logger: storetest.Logger(t), Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
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
	tk, err := tickets.Open(ctx, reports.Actor{ClientID: "acme-client", TenantID: tn.ID},
		reports.NewTicket{Products: []string{"app"}, Subject: "Audit report", Message: "Please."})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tickets.Approve(ctx, f.staff, "1", ""); err != nil {
		t.Fatal(err)
	}
	if f.bundles, err = bundletest.New(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	filler := make([]byte, 300<<10)
	rand.Read(filler)
	f.bundle, err = f.bundles.Add(ctx, reports.Bundle{TenantID: tn.ID, TenantName: "Acme Corp", TicketID: tk.ID, Ticket: "1",
		ProductID: "app", ProductName: "App Server", Version: "1.4.0"},
		bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`)), bundle.Bytes("sast.sarif", filler))
	if err != nil {
		t.Fatal(err)
	}
	if f.zip, err = os.ReadFile(f.bundles.Path(f.bundle.ID)); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if f.links, err = reports.NewLinkService(f.db, f.bundles, lic, key, reports.LinkConfig{Logger: storetest.Logger(t), Now: f.clock.now}); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	h := api.NewLinks(f.links, func(*http.Request) (reports.Actor, bool) { return reports.Actor{}, false }, cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /r/{token}", h.Landing)
	mux.HandleFunc("POST /r/{token}/download", h.Download)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// link makes a link to the bundle and returns it with its token.
func (f *fixture) link(o reports.LinkOptions) (reports.Link, string) {
	f.t.Helper()
	l, token, err := f.links.Create(f.t.Context(), f.staff, reports.NewLink{Ticket: "1", BundleID: f.bundle.ID, LinkOptions: o})
	if err != nil {
		f.t.Fatal(err)
	}
	return l, token
}

func (f *fixture) downloads(id string) int {
	f.t.Helper()
	l, err := f.links.Get(f.t.Context(), f.staff, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return l.Downloads
}

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to the server with the headers (name, value, …).
func (f *fixture) do(method, path string, headers ...string) answer {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// styleHash is the CSP source of the page's one <style> element.
func styleHash(page []byte) string {
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindSubmatch(page)
	if m == nil {
		return ""
	}
	sum := sha256.Sum256(m[1])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// The whole path of a customer: the landing page, which uses no
// download; a download in three ranges that counts once and reassembles
// into the signed bundle; a second download that counts again; the limit
// then answers 410. With the headers each answer needs.
func TestLinkPagesAndDownloads(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		f := setup(t, dialect, api.DefaultLinksConfig())
		l, token := f.link(reports.LinkOptions{MaxDownloads: 2})

		for range 2 {
			page := f.do("GET", "/r/"+token)
			if page.status != 200 {
				t.Fatalf("landing page: %d %s", page.status, page.body)
			}
			csp := page.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "style-src " + styleHash(page.body), "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("landing CSP %q lacks %q", csp, want)
				}
			}
			for h, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
				"Content-Type": "text/html; charset=utf-8"} {
				if got := page.header.Get(h); got != want {
					t.Errorf("landing %s = %q, want %q", h, got, want)
				}
			}
			body := string(page.body)
			for _, want := range []string{"App Server 1.4.0", "Acme Corp", "ticket 1", f.bundle.SHA256, f.bundle.KeyID, "2 of 2",
				`<form method="post" action="` + token + `/download">`, "vigil verify vigil-report-app-1.4.0-ticket-1.zip --server https://"} {
				if !strings.Contains(body, want) {
					t.Errorf("the landing page lacks %q", want)
				}
			}
			for _, file := range f.bundle.Files {
				if !strings.Contains(body, file.Name) || !strings.Contains(body, file.SHA256) {
					t.Errorf("the landing page lacks the file %s and its SHA-256", file.Name)
				}
			}
			if strings.Contains(strings.ToLower(body), "<script") || strings.Contains(body, "http://") {
				t.Error("the landing page has a script or a remote reference")
			}
		}
		if n := f.downloads(l.ID); n != 0 {
			t.Fatalf("two views used %d downloads", n)
		}

		// One download in three ranges, as a download manager makes it.
		size := len(f.zip)
		var got []byte
		for _, rg := range [][2]int{{0, 99_999}, {100_000, 199_999}, {200_000, size - 1}} {
			a := f.do("POST", "/r/"+token+"/download", "Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]), "Sec-Fetch-Site", "same-origin")
			if a.status != http.StatusPartialContent {
				t.Fatalf("range %v: %d %s", rg, a.status, a.body)
			}
			if cr, want := a.header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], size); cr != want {
				t.Errorf("Content-Range = %q, want %q", cr, want)
			}
			for h, want := range map[string]string{
				"Content-Type": "application/zip", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
				"Content-Disposition": `attachment; filename=vigil-report-app-1.4.0-ticket-1.zip`, "Accept-Ranges": "bytes",
				"Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'", "ETag": `"sha256-` + f.bundle.SHA256 + `"`,
			} {
				if got := a.header.Get(h); got != want {
					t.Errorf("download %s = %q, want %q", h, got, want)
				}
			}
			got = append(got, a.body...)
		}
		if !bytes.Equal(got, f.zip) {
			t.Fatal("the three ranges do not make the bundle")
		}
		if _, err := bundle.VerifyZip(t.Context(), bytes.NewReader(got), int64(len(got)), []attest.PublicKey{f.bundles.PublicKey()}); err != nil {
			t.Errorf("the downloaded bundle does not verify: %v", err)
		}
		if n := f.downloads(l.ID); n != 1 {
			t.Errorf("a download in three ranges counted %d times", n)
		}

		// A second, whole download counts again; then the link is used up.
		a := f.do("POST", "/r/"+token+"/download")
		if a.status != 200 || !bytes.Equal(a.body, f.zip) || a.header.Get("Content-Length") != strconv.Itoa(size) {
			t.Fatalf("whole download: %d, %d bytes", a.status, len(a.body))
		}
		if n := f.downloads(l.ID); n != 2 {
			t.Errorf("downloads = %d, want 2", n)
		}
		for _, req := range []struct{ method, path string }{{"POST", "/r/" + token + "/download"}, {"GET", "/r/" + token}} {
			a := f.do(req.method, req.path)
			if a.status != http.StatusGone || !strings.Contains(string(a.body), "no downloads left") {
				t.Errorf("%s %s on a used-up link: %d %s", req.method, req.path, a.status, a.body)
			}
		}

		as, _, err := f.links.ListAccess(t.Context(), f.staff, l.ID, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var log []string
		for _, a := range as {
			log = append(log, fmt.Sprintf("%s %d %d %v", a.Kind, a.Status, a.Bytes, a.Counted))
		}
		wantLog := []string{
			fmt.Sprintf("view 200 %d false", as[0].Bytes), fmt.Sprintf("view 200 %d false", as[1].Bytes),
			"download 206 100000 true", "download 206 100000 false", fmt.Sprintf("download 206 %d false", size-200_000),
			fmt.Sprintf("download 200 %d true", size), "download 410 0 false", "view 410 0 false",
		}
		if !slices.Equal(log, wantLog) {
			t.Errorf("access log:\n%q\nwant\n%q", log, wantLog)
		}
		if as[0].Bytes < 1000 || as[2].ClientAddress != "127.0.0.1" || as[2].UserAgent != "Go-http-client/1.1" || as[2].Range != "bytes=0-99999" {
			t.Errorf("access entries: %+v", as[:3])
		}
	})
}

// Every token that names no link gets the same 404 page, well-formed or
// not, on both routes: nothing tells them apart.
func TestLinkUnknownTokenPages(t *testing.T) {
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	_, token := f.link(reports.LinkOptions{})
	random := make([]byte, 32)
	rand.Read(random)
	flip := []byte(token)
	flip[5] ^= 1
	var first *answer
	for _, bad := range []string{base64.RawURLEncoding.EncodeToString(random), string(flip), "x", strings.Repeat("A", 4000), "%00", "..%2F..%2Fetc"} {
		for _, req := range []struct{ method, path string }{{"GET", "/r/" + bad}, {"POST", "/r/" + bad + "/download"}} {
			a := f.do(req.method, req.path)
			if a.status != http.StatusNotFound {
				t.Errorf("%s %.40s: %d", req.method, req.path, a.status)
				continue
			}
			if first == nil {
				first = &a
				continue
			}
			if !bytes.Equal(a.body, first.body) {
				t.Errorf("%s %.40s: another body than the first unknown token's", req.method, req.path)
			}
			for _, h := range []string{"Content-Type", "Content-Length", "Content-Security-Policy", "Cache-Control", "Referrer-Policy"} {
				if a.header.Get(h) != first.header.Get(h) {
					t.Errorf("%s %.40s: %s = %q, the first's %q", req.method, req.path, h, a.header.Get(h), first.header.Get(h))
				}
			}
		}
	}
}

// Expired, revoked and used-up links answer 410 with a page that says
// which and nothing more: not what the link was for.
func TestLinkGonePages(t *testing.T) {
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	ctx := t.Context()
	expired, expiredToken := f.link(reports.LinkOptions{Expiry: time.Hour})
	revoked, revokedToken := f.link(reports.LinkOptions{Expiry: 24 * time.Hour})
	_, usedToken := f.link(reports.LinkOptions{Expiry: 24 * time.Hour, MaxDownloads: 1})
	if a := f.do("POST", "/r/"+usedToken+"/download"); a.status != 200 {
		t.Fatalf("download: %d", a.status)
	}
	if _, err := f.links.Revoke(ctx, f.staff, revoked.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(2 * time.Hour)
	for _, c := range []struct {
		token, says string
	}{
		{expiredToken, "This link has expired"},
		{revokedToken, "This link was revoked"},
		{usedToken, "This link is used up"},
	} {
		for _, req := range []struct{ method, path string }{{"GET", "/r/" + c.token}, {"POST", "/r/" + c.token + "/download"}} {
			a := f.do(req.method, req.path)
			body := string(a.body)
			if a.status != http.StatusGone || !strings.Contains(body, c.says) {
				t.Errorf("%s %s…: %d %q, want 410 saying %q", req.method, req.path[:10], a.status, body, c.says)
			}
			for _, secret := range []string{"App Server", "Acme", "1.4.0", f.bundle.SHA256, "leaked", expired.ID, "ticket"} {
				if strings.Contains(body, secret) {
					t.Errorf("the 410 page says %q", secret)
				}
			}
			if a.header.Get("Cache-Control") != "no-store" || !strings.Contains(a.header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("410 headers: %v", a.header)
			}
		}
	}
}

// A browser's download from another site is refused, by Sec-Fetch-Site
// or, without it, by Origin; refusals count no download.
func TestLinkDownloadCrossSite(t *testing.T) {
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	l, token := f.link(reports.LinkOptions{MaxDownloads: 10})
	host := strings.TrimPrefix(f.srv.URL, "https://")
	served := 0
	for _, c := range []struct {
		headers []string
		want    int
	}{
		{[]string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403},
		{[]string{"Sec-Fetch-Site", "same-site"}, 403},
		{[]string{"Sec-Fetch-Site", "cross-site", "Origin", "https://" + host}, 403}, // the browser's word wins
		{[]string{"Origin", "https://evil.example"}, 403},
		{[]string{"Origin", "null"}, 403},
		{[]string{"Origin", "https://" + host + ".evil.example"}, 403},
		{[]string{"Sec-Fetch-Site", "same-origin", "Origin", "null"}, 200}, // the landing page sends no referrer
		{[]string{"Sec-Fetch-Site", "none"}, 200},
		{[]string{"Origin", "https://" + host}, 200},
		{nil, 200}, // curl, a download manager
	} {
		a := f.do("POST", "/r/"+token+"/download", c.headers...)
		if a.status != c.want {
			t.Errorf("%q: %d, want %d", c.headers, a.status, c.want)
		}
		if a.status == 200 {
			served++
		}
	}
	if n := f.downloads(l.ID); n != served {
		t.Errorf("downloads = %d, want %d (refusals count none)", n, served)
	}
}

// Requests to links are limited per client address, read through the
// trusted proxies; the access log keeps that address.
func TestLinkRateLimit(t *testing.T) {
	cfg := api.LinksConfig{Rate: rate.Every(time.Hour), Burst: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	f := setup(t, store.SQLite, cfg)
	l, token := f.link(reports.LinkOptions{})
	for i := range 3 {
		if a := f.do("GET", "/r/"+token, "X-Forwarded-For", "203.0.113.5"); a.status != 200 {
			t.Fatalf("request %d: %d", i, a.status)
		}
	}
	for _, req := range []struct{ method, path string }{{"GET", "/r/" + token}, {"POST", "/r/" + token + "/download"}, {"GET", "/r/unknown"}} {
		a := f.do(req.method, req.path, "X-Forwarded-For", "203.0.113.5")
		var e struct{ Code, Message string }
		json.Unmarshal(a.body, &e)
		if a.status != http.StatusTooManyRequests || e.Code != "RATE_LIMITED" || a.header.Get("Retry-After") == "" {
			t.Errorf("%s over the limit: %d %s (Retry-After %q)", req.method, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	// Another client behind the same proxy has its own budget.
	if a := f.do("GET", "/r/"+token, "X-Forwarded-For", "203.0.113.6"); a.status != 200 {
		t.Errorf("another client: %d", a.status)
	}
	as, _, err := f.links.ListAccess(t.Context(), f.staff, l.ID, reports.Page{})
	if err != nil || len(as) != 4 || as[0].ClientAddress != "203.0.113.5" || as[3].ClientAddress != "203.0.113.6" {
		t.Errorf("access log = %+v, %v; want 4 views, by the forwarded addresses", as, err)
	}
	if n := f.downloads(l.ID); n != 0 {
		t.Errorf("a refused download counted: %d", n)
	}
}

// Ranges as http.ServeContent reads them decide what counts: an If-Range
// for another version, or a Range past the end, is no resume.
func TestLinkRangeEdges(t *testing.T) {
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	l, token := f.link(reports.LinkOptions{})
	size := len(f.zip)
	etag := `"sha256-` + f.bundle.SHA256 + `"`
	for _, c := range []struct {
		name    string
		headers []string
		status  int
		count   int // downloads after
	}{
		{"start", []string{"Range", "bytes=0-9"}, 206, 1},
		{"resume with a matching If-Range", []string{"Range", "bytes=10-", "If-Range", etag}, 206, 1},
		// A POST's If-Range is not honoured (as ServeContent): the link
		// serves one digest only anyway.
		{"resume with another If-Range", []string{"Range", "bytes=10-", "If-Range", `"sha256-00"`}, 206, 1},
		{"past the end", []string{"Range", fmt.Sprintf("bytes=%d-", size)}, 416, 1},
		{"malformed", []string{"Range", "bytes=x-"}, 416, 1},
		{"ranges that add up to more than the bundle: the whole of it", []string{"Range", "bytes=10-,11-"}, 200, 2},
		{"the last bytes, under the grant", []string{"Range", "bytes=-100"}, 206, 2},
		{"two ranges from 0", []string{"Range", "bytes=0-0,100-199"}, 206, 3},
	} {
		a := f.do("POST", "/r/"+token+"/download", c.headers...)
		if a.status != c.status {
			t.Errorf("%s: %d, want %d", c.name, a.status, c.status)
		}
		if a.status == 416 && a.header.Get("Content-Range") != "bytes */"+strconv.Itoa(size) {
			t.Errorf("%s: Content-Range %q", c.name, a.header.Get("Content-Range"))
		}
		if n := f.downloads(l.ID); n != c.count {
			t.Errorf("%s: downloads = %d, want %d", c.name, n, c.count)
		}
	}
}

// classify reads every Range as http.ServeContent serves it: 416 where it
// refuses, partial where it answers 206, from the first byte exactly
// where its first range starts at 0.
func TestClassifyMatchesServeContent(t *testing.T) {
	const size = 1000
	content := bytes.Repeat([]byte("x"), size)
	etag := `"sha256-abc"`
	for _, c := range []struct{ rng, ifRange string }{
		{"", ""}, {"bytes=0-", ""}, {"bytes=0-0", ""}, {"bytes=1-", ""}, {"bytes=999-", ""}, {"bytes=1000-", ""}, {"bytes=-1", ""},
		{"bytes=-1000", ""}, {"bytes=-5000", ""}, {"bytes=500-100", ""}, {"bytes=abc", ""}, {"items=0-1", ""}, {"bytes=", ""},
		{"bytes= 5-6 ,", ""}, {"bytes=1-2,0-0", ""}, {"bytes=5-,0-", ""}, {"bytes=2000-,10-20", ""}, {"bytes=-0", ""},
		{"bytes=10-", etag}, {"bytes=10-", `"other"`}, {"bytes=10-", "Mon, 02 Jan 2006 15:04:05 GMT"}, {"bytes=--5", ""},
		{"bytes=0-1,2-3,4-5", ""}, {"bytes=100-1000000", ""},
	} {
		for _, method := range []string{"POST", "GET"} {
			r := httptest.NewRequest(method, "/r/t/download", nil)
			if c.rng != "" {
				r.Header.Set("Range", c.rng)
			}
			if c.ifRange != "" {
				r.Header.Set("If-Range", c.ifRange)
			}
			w := httptest.NewRecorder()
			w.Header().Set("ETag", etag)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
			req, err := api.Classify(r, size, etag)
			switch {
			case w.Code == 416 && err == nil, w.Code != 416 && err != nil:
				t.Errorf("%s %q (If-Range %q): ServeContent %d, classify error %v", method, c.rng, c.ifRange, w.Code, err)
			case w.Code == 206 && !req.Partial, w.Code == 200 && req.Partial:
				t.Errorf("%s %q (If-Range %q): ServeContent %d, classify partial %v", method, c.rng, c.ifRange, w.Code, req.Partial)
			case w.Code == 206 && w.Header().Get("Content-Range") != "":
				start, _, _ := strings.Cut(strings.TrimPrefix(w.Header().Get("Content-Range"), "bytes "), "-")
				if (start == "0") == req.Resume {
					t.Errorf("%q: ServeContent serves from byte %s, classify resume %v", c.rng, start, req.Resume)
				}
			}
		}
	}
}

// A bundle that no longer has the link's digest is not served.
func TestLinkBundleChangedPage(t *testing.T) {
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	l, token := f.link(reports.LinkOptions{})
	revoked, revokedToken := f.link(reports.LinkOptions{})
	if _, err := f.links.Revoke(t.Context(), f.staff, revoked.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.bundles.Replace(t.Context(), f.bundle.ID, bundle.Bytes("sbom.cdx.json", []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	// A link gone says so first.
	if a := f.do("POST", "/r/"+revokedToken+"/download"); a.status != http.StatusGone || !strings.Contains(string(a.body), "revoked") {
		t.Errorf("a revoked link to a changed bundle: %d %s", a.status, a.body)
	}
	for _, req := range []struct{ method, path string }{{"GET", "/r/" + token}, {"POST", "/r/" + token + "/download"}} {
		a := f.do(req.method, req.path)
		if a.status != http.StatusConflict || !strings.Contains(string(a.body), "has changed since the link was made") || a.header.Get("Content-Disposition") != "" {
			t.Errorf("%s: %d %s", req.method, a.status, a.body)
		}
	}
	if n := f.downloads(l.ID); n != 0 {
		t.Errorf("downloads = %d", n)
	}
}

// curl -C - resumes a download through the link: the resume counts no
// second download, and the file is the signed bundle.
func TestLinkCurlResume(t *testing.T) {
	curl := tooltest.Need(t, "curl", "curl")
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	l, token := f.link(reports.LinkOptions{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.zip")
	url := f.srv.URL + "/r/" + token + "/download"
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), curl, append([]string{"-sS", "--fail", "--cacert", ca, "-X", "POST", "-o", out}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("curl %q: %v\n%s", args, err, b)
		}
	}
	run("-r", "0-49999", url) // a download cut short
	run("-C", "-", url)       // resumed from byte 50000
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.zip) {
		t.Fatalf("curl's file is %d bytes, not the bundle (%d)", len(got), len(f.zip))
	}
	if n := f.downloads(l.ID); n != 1 {
		t.Errorf("a download resumed by curl counted %d times", n)
	}
	as, _, _ := f.links.ListAccess(t.Context(), f.staff, l.ID, reports.Page{})
	if len(as) != 2 || as[1].Range != "bytes=50000-" || as[1].Counted || !strings.HasPrefix(as[1].UserAgent, "curl/") {
		t.Errorf("access log = %+v", as)
	}
}

// A large download over a slow line outlasts the server's write timeout:
// the link moves its write deadline on while bytes keep going out.
func TestLinkSlowDownloadOutlastsWriteTimeout(t *testing.T) {
	f := setup(t, store.SQLite, api.DefaultLinksConfig())
	big := make([]byte, 8<<20)
	rand.Read(big)
	b, err := f.bundles.Add(t.Context(), reports.Bundle{TenantID: f.bundle.TenantID, TenantName: "Acme Corp", TicketID: f.bundle.TicketID, Ticket: "1",
		ProductID: "app", ProductName: "App Server", Version: "1.5.0"}, bundle.Bytes("big.bin", big))
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := f.links.Create(t.Context(), f.staff, reports.NewLink{Ticket: "1", BundleID: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	slow := httptest.NewUnstartedServer(f.srv.Config.Handler)
	slow.Config.WriteTimeout = 300 * time.Millisecond
	slow.StartTLS()
	t.Cleanup(slow.Close)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", slow.URL+"/r/"+token+"/download", nil)
	resp, err := slow.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got int64
	buf := make([]byte, 512<<10)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		time.Sleep(60 * time.Millisecond) // 8 MiB in about a second: three write timeouts
	}
	if got != b.Size {
		t.Errorf("got %d bytes of %d: the download was cut", got, b.Size)
	}
}
