package reports_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/webhooks"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/bundle"
	"github.com/vigil-sec/vigil/reports/bundle/bundletest"
)

// linkEnv is the tickets' env with a bundle store on disk (real signed
// ZIPs), the link service on the same clock, and acme's ticket 1 for app
// and agent, approved, with a bundle of app built for it.
type linkEnv struct {
	*ticketEnv
	bundles *bundletest.Store
	links   *reports.LinkService
	logs    *bytes.Buffer
	ticket  reports.TicketDetail
	bundle  reports.Bundle
}

var (
	fullDownload = func(reports.Bundle) (reports.DownloadRequest, error) { return reports.DownloadRequest{}, nil }
	resume       = func(reports.Bundle) (reports.DownloadRequest, error) {
		return reports.DownloadRequest{Resume: true, Partial: true, Range: "bytes=100-"}, nil
	}
	visitorA = reports.Visitor{Address: "192.0.2.10", UserAgent: "curl/8.5.0"}
	visitorB = reports.Visitor{Address: "198.51.100.7", UserAgent: "Mozilla/5.0"}
)

func newLinkEnv(t *testing.T, dialect store.Dialect) *linkEnv {
	t.Helper()
	ctx := t.Context()
	e := &linkEnv{ticketEnv: newTicketEnv(t, dialect, reports.TicketConfig{}), logs: &bytes.Buffer{}}
	var err error
	if e.bundles, err = bundletest.New(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	e.links = e.linkService(e.bundles)
	e.ticket = e.open(e.acmeC, ask("", "app", "agent"))
	if _, err := e.svc.Approve(ctx, e.staff, "1", ""); err != nil {
		t.Fatal(err)
	}
	e.bundle = e.addBundle(e.ticket.Ticket, "app")
	return e
}

func (e *linkEnv) linkService(bundles reports.BundleReader) *reports.LinkService {
	e.t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := reports.NewLinkService(e.db, bundles, e.lic, key, reports.LinkConfig{BaseURL: "https://vigil.example.com/", Logger: log, Now: e.clock.now})
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// addBundle builds and stores a bundle of the product for the ticket.
func (e *linkEnv) addBundle(t reports.Ticket, product string) reports.Bundle {
	e.t.Helper()
	b, err := e.bundles.Add(e.t.Context(), reports.Bundle{
		TenantID: t.TenantID, TenantName: "Acme", TicketID: t.ID, Ticket: "1", ProductID: product, ProductName: "Product " + product, Version: "1.4.0",
	}, bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`)), bundle.Bytes("sast.sarif", []byte(`{"version":"2.1.0","runs":[]}`)))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *linkEnv) create(o reports.LinkOptions) (reports.Link, string) {
	e.t.Helper()
	l, token, err := e.links.Create(e.t.Context(), e.staff, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID, LinkOptions: o})
	if err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	return l, token
}

func (e *linkEnv) get(id string) reports.Link {
	e.t.Helper()
	l, err := e.links.Get(e.t.Context(), e.staff, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// download makes one download request and finishes it as served.
func (e *linkEnv) download(token string, v reports.Visitor, c reports.Classifier) (*reports.Download, error) {
	d, err := e.links.Download(e.t.Context(), token, v, c)
	if err == nil {
		e.links.FinishDownload(e.t.Context(), d, 200, d.Bundle.Size)
	}
	return d, err
}

// linkEvents are the links' events of the ticket's history: "type by actor".
func (e *linkEnv) linkEvents() []string {
	e.t.Helper()
	d, err := e.svc.Get(e.t.Context(), e.staff, "1")
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range d.History {
		if strings.HasPrefix(ev.Type, "link_") {
			out = append(out, ev.Type+" by "+ev.Actor)
		}
	}
	return out
}

func goneReason(err error) string {
	if g, ok := errors.AsType[*reports.LinkGoneError](err); ok {
		return g.Reason
	}
	return ""
}

// What a link may be made for: staff only, an approved ticket, a bundle
// built for that ticket and one of its products, options in bounds; each
// refusal names what was wrong and makes nothing.
func TestLinkCreateRefusals(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		open := e.open(e.staff, ask(e.acme, "app")) // ticket 2, not approved
		globexTicket := e.open(e.globexC, ask("", "app"))
		if _, err := e.svc.Approve(ctx, e.staff, "3", ""); err != nil {
			t.Fatal(err)
		}
		otherTicket := e.addBundle(open.Ticket, "app")
		globexBundle := e.addBundle(globexTicket.Ticket, "app")
		legacy := e.addBundle(e.ticket.Ticket, "legacy")

		for _, c := range []struct {
			name   string
			a      reports.Actor
			nl     reports.NewLink
			target error
			says   string
		}{
			{"tenant client", e.acmeC, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID}, reports.ErrForbidden, "only staff"},
			{"expiry too long", e.staff, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID, LinkOptions: reports.LinkOptions{Expiry: 31 * 24 * time.Hour}}, reports.ErrInvalid, "expiry 744h0m0s (31 days): at most 720h0m0s (30 days)"},
			{"expiry negative", e.staff, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID, LinkOptions: reports.LinkOptions{Expiry: -time.Hour}}, reports.ErrInvalid, "expiry -1h0m0s: at least 1m0s"},
			{"no downloads", e.staff, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID, LinkOptions: reports.LinkOptions{MaxDownloads: -1}}, reports.ErrInvalid, "max_downloads -1: want 1 to 100"},
			{"too many downloads", e.staff, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID, LinkOptions: reports.LinkOptions{MaxDownloads: 101}}, reports.ErrInvalid, "max_downloads 101"},
			{"unknown ticket", e.staff, reports.NewLink{Ticket: "99", BundleID: e.bundle.ID}, reports.ErrNotFound, "ticket 99"},
			{"unknown bundle", e.staff, reports.NewLink{Ticket: "1", BundleID: "nope"}, reports.ErrInvalid, `bundle_id "nope": no such bundle`},
			{"ticket not approved", e.staff, reports.NewLink{Ticket: "2", BundleID: otherTicket.ID}, reports.ErrConflict, "ticket 2 is open"},
			{"another ticket's bundle", e.staff, reports.NewLink{Ticket: "1", BundleID: otherTicket.ID}, reports.ErrInvalid, "built for another ticket than 1"},
			{"another tenant's bundle", e.staff, reports.NewLink{Ticket: "1", BundleID: globexBundle.ID}, reports.ErrInvalid, "built for tenant"},
			{"a product not asked for", e.staff, reports.NewLink{Ticket: "1", BundleID: legacy.ID}, reports.ErrInvalid, `product "legacy", which ticket 1 does not ask for`},
		} {
			_, token, err := e.links.Create(ctx, c.a, c.nl)
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.says) || token != "" {
				t.Errorf("%s: Create = %q, %v; want %v saying %q", c.name, token, err, c.target, c.says)
			}
		}
		if got := e.linkEvents(); len(got) != 0 {
			t.Errorf("history after refusals: %q", got)
		}
		ls, _, err := e.links.List(ctx, e.staff, reports.LinkQuery{})
		if err != nil || len(ls) != 0 {
			t.Errorf("links after refusals: %v, %v", ls, err)
		}

		// The defaults: 7 days, 5 downloads; the token is 256 bits.
		start := e.clock.now().UTC()
		l, token := e.create(reports.LinkOptions{})
		if b, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil || len(b) != 32 || len(token) != 43 {
			t.Errorf("token %q: %d bytes, %v; want 256 bits in base64url", token, len(b), err)
		}
		if l.Status != reports.LinkActive || l.MaxDownloads != 5 || l.DownloadsLeft != 5 || !l.ExpiresAt.Equal(start.Truncate(time.Microsecond).Add(7*24*time.Hour)) ||
			l.TicketNumber != 1 || l.TenantID != e.acme || l.BundleSHA256 != e.bundle.SHA256 || l.ProductID != "app" || l.Version != "1.4.0" || l.CreatedBy != "staff-client" {
			t.Errorf("link = %+v", l)
		}
		if got, want := e.links.URL(token), "https://vigil.example.com/r/"+token; got != want {
			t.Errorf("URL = %q, want %q", got, want)
		}
	})
}

// The token is kept nowhere: not in any row of the database (the outbox
// holds the tenant's report_link.created sealed), not in the history, not
// in the logs; only its keyed hash is stored, and the same token with
// another installation's seal key opens nothing.
func TestLinkTokenNeverStored(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		sink := &hookSink{}
		srv := httptest.NewServer(sink)
		t.Cleanup(srv.Close)
		if _, err := e.lic.CreateWebhook(ctx, licensing.NewWebhook{TenantID: e.acme, URL: srv.URL}); err != nil {
			t.Fatal(err)
		}
		l, token := e.create(reports.LinkOptions{})
		if _, err := e.links.View(ctx, token, visitorA); err != nil {
			t.Fatal(err)
		}
		l2, token2, err := e.links.Reissue(ctx, e.staff, l.ID, reports.LinkOptions{})
		if err != nil {
			t.Fatal(err)
		}

		for _, v := range storetest.Dump(t, e.db) {
			for _, tok := range []string{token, token2} {
				if strings.Contains(v, tok) {
					t.Errorf("a stored value holds a token: %.200q", v)
				}
			}
		}
		var hash, payload string
		if err := e.db.SQL().QueryRowContext(ctx, "SELECT token_hash FROM report_links WHERE id = '"+l2.ID+"'").Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if len(hash) != 43 || hash == token2 {
			t.Errorf("token_hash = %q", hash)
		}
		if err := e.db.SQL().QueryRowContext(ctx, "SELECT payload FROM license_webhook_events WHERE type = 'report_link.created' ORDER BY created_at LIMIT 1").Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(payload, "sealed1:") {
			t.Errorf("report_link.created is stored as %.80q, want sealed", payload)
		}
		if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), token2) {
			t.Error("the logs hold a token")
		}
		d, err := e.svc.Get(ctx, e.staff, "1")
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range d.History {
			if strings.Contains(string(ev.Body), token) || strings.Contains(string(ev.Body), token2) {
				t.Errorf("history event %s holds a token", ev.Type)
			}
		}

		// Another installation (another seal key) on a copy of the
		// database finds no link by the token.
		other := e.linkService(e.bundles)
		if _, err := other.View(ctx, token2, visitorA); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("View with another seal key = %v, want not found", err)
		}
		if _, err := e.links.View(ctx, token2, visitorA); err != nil {
			t.Errorf("View = %v", err)
		}
	})
}

// Every token that names no link, well-formed or not, gets the same
// answer; a link's token with one character changed is unknown.
func TestLinkUnknownTokens(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		_, token := e.create(reports.LinkOptions{})
		random := make([]byte, 32)
		rand.Read(random)
		flip := []byte(token)
		flip[10] ^= 1
		var msgs []string
		for _, bad := range []string{base64.RawURLEncoding.EncodeToString(random), string(flip), token[:42], token + "A", "", "abc",
			strings.Repeat("A", 5000), "../../etc/passwd", base64.URLEncoding.EncodeToString(random), token + "\x00"} {
			_, verr := e.links.View(ctx, bad, visitorA)
			_, derr := e.links.Download(ctx, bad, visitorA, fullDownload)
			if !errors.Is(verr, reports.ErrNotFound) || !errors.Is(derr, reports.ErrNotFound) || verr.Error() != derr.Error() {
				t.Errorf("token %.50q: View = %v, Download = %v; want the same not found", bad, verr, derr)
				continue
			}
			msgs = append(msgs, verr.Error())
		}
		if msgs = slices.Compact(msgs); len(msgs) != 1 {
			t.Errorf("unknown tokens are told apart: %q", slices.Compact(msgs))
		}
		if got := e.linkEvents(); !slices.Equal(got, []string{"link_created by staff-client"}) {
			t.Errorf("history = %q", got)
		}
	})
}

// The landing page uses no download; every view is in the access log and
// the history.
func TestLinkViewUsesNoDownload(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l, token := e.create(reports.LinkOptions{MaxDownloads: 1})
		for range 3 {
			v, err := e.links.View(ctx, token, visitorA)
			if err != nil {
				t.Fatal(err)
			}
			if v.Bundle.SHA256 != e.bundle.SHA256 || len(v.Bundle.Files) != 4 || v.Link.DownloadsLeft != 1 {
				t.Errorf("view = %+v", v)
			}
			e.links.FinishAccess(ctx, v.Access, 200, 1234)
		}
		if got := e.get(l.ID); got.Downloads != 0 || got.Status != reports.LinkActive {
			t.Errorf("after three views: %+v", got)
		}
		as, _, err := e.links.ListAccess(ctx, e.acmeC, l.ID, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 3 || as[0].Kind != reports.AccessView || as[0].Status != 200 || as[0].Bytes != 1234 ||
			as[0].ClientAddress != "192.0.2.10" || as[0].UserAgent != "curl/8.5.0" || as[0].Counted {
			t.Errorf("access log = %+v", as)
		}
		if got, want := e.linkEvents(), []string{"link_created by staff-client", "link_viewed by link-holder", "link_viewed by link-holder", "link_viewed by link-holder"}; !slices.Equal(got, want) {
			t.Errorf("history = %q, want %q", got, want)
		}
	})
}

// A download counts once, however it is split: the request that asks for
// the first byte counts it and opens a grant for its client address;
// resumes under the grant count nothing, a resume from elsewhere counts;
// a used-up link lets the open grant finish, then serves nothing.
func TestLinkDownloadCounting(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l, token := e.create(reports.LinkOptions{MaxDownloads: 2})

		steps := []struct {
			name    string
			v       reports.Visitor
			c       reports.Classifier
			advance time.Duration
			counted bool
			gone    string
		}{
			{"A starts", visitorA, fullDownload, 0, true, ""},
			{"A resumes", visitorA, resume, time.Minute, false, ""},
			{"A resumes again", visitorA, resume, 50 * time.Minute, false, ""}, // the grant slides
			{"B resumes without a grant", visitorB, resume, 0, true, ""},
			{"A starts again: used up", visitorA, fullDownload, 0, false, reports.LinkUsedUp},
			{"A resumes under its grant", visitorA, resume, 59 * time.Minute, false, ""},
			{"B resumes under its grant", visitorB, resume, 0, false, ""},
			{"A resumes after its grant closed", visitorA, resume, 61 * time.Minute, false, reports.LinkUsedUp},
		}
		for _, s := range steps {
			e.clock.advance(s.advance)
			d, err := e.download(token, s.v, s.c)
			if s.gone != "" {
				if goneReason(err) != s.gone || !errors.Is(err, reports.ErrGone) {
					t.Errorf("%s: %v, want gone: %s", s.name, err, s.gone)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if d.Counted != s.counted {
				t.Errorf("%s: counted = %v, want %v", s.name, d.Counted, s.counted)
			}
		}
		if got := e.get(l.ID); got.Downloads != 2 || got.Status != reports.LinkUsedUp || got.DownloadsLeft != 0 {
			t.Errorf("link = %+v", got)
		}
		as, _, err := e.links.ListAccess(ctx, e.staff, l.ID, reports.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range as {
			got = append(got, a.ClientAddress+" "+strings.Repeat("counted ", boolInt(a.Counted))+strconv.Itoa(a.Status))
		}
		want := []string{"192.0.2.10 counted 200", "192.0.2.10 200", "192.0.2.10 200", "198.51.100.7 counted 200", "192.0.2.10 410",
			"192.0.2.10 200", "198.51.100.7 200", "192.0.2.10 410"}
		if !slices.Equal(got, want) {
			t.Errorf("access log:\n%q\nwant\n%q", got, want)
		}
		if as[1].Range != "bytes=100-" || as[1].Bytes != e.bundle.Size {
			t.Errorf("a resume's entry = %+v", as[1])
		}
		d, err := e.svc.Get(ctx, e.staff, "1")
		if err != nil {
			t.Fatal(err)
		}
		var left []int
		for _, ev := range d.History {
			if ev.Type == reports.EventLinkDownloaded {
				var b struct {
					DownloadsLeft int    `json:"downloads_left"`
					ClientAddress string `json:"client_address"`
				}
				json.Unmarshal(ev.Body, &b)
				left = append(left, b.DownloadsLeft)
			}
		}
		if !slices.Equal(left, []int{1, 0}) {
			t.Errorf("link_downloaded events' downloads_left = %v, want [1 0]", left)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Expiry, on the service's clock: an expired link serves nothing, not
// even a resume; its expiry is recorded once, by the first refusal or by
// the sweep (ExpireDue).
func TestLinkExpiry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l1, token1 := e.create(reports.LinkOptions{Expiry: time.Hour})
		l2, _ := e.create(reports.LinkOptions{Expiry: 2 * time.Hour})
		if _, err := e.download(token1, visitorA, fullDownload); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(59 * time.Minute)
		if _, err := e.links.View(ctx, token1, visitorA); err != nil {
			t.Fatalf("a minute before expiry: %v", err)
		}
		if n, err := e.links.ExpireDue(ctx); err != nil || n != 0 {
			t.Errorf("ExpireDue before expiry = %d, %v", n, err)
		}
		e.clock.advance(time.Minute)
		for range 2 {
			if _, err := e.links.View(ctx, token1, visitorA); goneReason(err) != reports.LinkExpired {
				t.Errorf("View at expiry = %v, want expired", err)
			}
			if _, err := e.download(token1, visitorA, resume); goneReason(err) != reports.LinkExpired {
				t.Errorf("resume at expiry = %v, want expired", err)
			}
		}
		if got := e.get(l1.ID); got.Status != reports.LinkExpired {
			t.Errorf("status = %s", got.Status)
		}
		// Only l2 is left for the sweep, once it is due.
		if n, err := e.links.ExpireDue(ctx); err != nil || n != 0 {
			t.Errorf("ExpireDue = %d, %v; want 0 (l1 recorded already, l2 not due)", n, err)
		}
		e.clock.advance(time.Hour)
		if n, err := e.links.ExpireDue(ctx); err != nil || n != 1 {
			t.Errorf("ExpireDue = %d, %v; want 1", n, err)
		}
		if n, err := e.links.ExpireDue(ctx); err != nil || n != 0 {
			t.Errorf("ExpireDue again = %d, %v; want 0", n, err)
		}
		want := []string{"link_created by staff-client", "link_created by staff-client", "link_downloaded by link-holder",
			"link_viewed by link-holder", "link_expired by system", "link_expired by system"}
		if got := e.linkEvents(); !slices.Equal(got, want) {
			t.Errorf("history = %q, want %q", got, want)
		}
		if got := e.get(l2.ID); got.Status != reports.LinkExpired {
			t.Errorf("l2 status = %s", got.Status)
		}
	})
}

// Revocation and reissue are staff's; a revoked link serves nothing at
// once; a reissued link's old token stops working and the new one works,
// for the same bundle; a link is reissued once.
func TestLinkRevokeAndReissue(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l, token := e.create(reports.LinkOptions{})
		if _, err := e.download(token, visitorA, fullDownload); err != nil {
			t.Fatal(err)
		}
		if _, err := e.links.Revoke(ctx, e.acmeC, l.ID, ""); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("tenant revokes: %v", err)
		}
		if _, _, err := e.links.Reissue(ctx, e.acmeC, l.ID, reports.LinkOptions{}); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("tenant reissues: %v", err)
		}
		r, err := e.links.Revoke(ctx, e.staff, l.ID, "sent to the wrong person")
		if err != nil || r.Status != reports.LinkRevoked || r.RevokeReason != "sent to the wrong person" || r.RevokedAt == nil {
			t.Fatalf("Revoke = %+v, %v", r, err)
		}
		if _, err := e.links.Revoke(ctx, e.staff, l.ID, ""); !errors.Is(err, reports.ErrConflict) {
			t.Errorf("revoke twice: %v", err)
		}
		if _, err := e.links.View(ctx, token, visitorA); goneReason(err) != reports.LinkRevoked {
			t.Errorf("View revoked = %v", err)
		}
		if _, err := e.download(token, visitorA, resume); goneReason(err) != reports.LinkRevoked {
			t.Errorf("resume of a revoked link = %v", err)
		}

		n, token2, err := e.links.Reissue(ctx, e.staff, l.ID, reports.LinkOptions{MaxDownloads: 2, Expiry: 48 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if n.ID == l.ID || n.Replaces != l.ID || n.BundleID != e.bundle.ID || n.BundleSHA256 != l.BundleSHA256 || n.MaxDownloads != 2 || n.Downloads != 0 || token2 == token {
			t.Errorf("reissued = %+v", n)
		}
		if old := e.get(l.ID); old.ReplacedBy != n.ID || old.RevokeReason != "sent to the wrong person" {
			t.Errorf("old link = %+v", old)
		}
		if _, _, err := e.links.Reissue(ctx, e.staff, l.ID, reports.LinkOptions{}); !errors.Is(err, reports.ErrConflict) || !strings.Contains(err.Error(), n.ID) {
			t.Errorf("reissue the old link again: %v, want a conflict naming %s", err, n.ID)
		}
		if _, err := e.download(token2, visitorA, fullDownload); err != nil {
			t.Errorf("the new token: %v", err)
		}

		// Reissuing an active link revokes it.
		n3, token3, err := e.links.Reissue(ctx, e.staff, n.ID, reports.LinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if old := e.get(n.ID); old.Status != reports.LinkRevoked || old.RevokeReason != reports.ReasonReissued || old.ReplacedBy != n3.ID {
			t.Errorf("the reissued link = %+v", old)
		}
		if _, err := e.links.View(ctx, token2, visitorA); goneReason(err) != reports.LinkRevoked {
			t.Errorf("the reissued link's token: %v", err)
		}
		if _, err := e.links.View(ctx, token3, visitorA); err != nil {
			t.Errorf("the newest token: %v", err)
		}
		want := []string{"link_created by staff-client", "link_downloaded by link-holder", "link_revoked by staff-client",
			"link_reissued by staff-client", "link_downloaded by link-holder", "link_reissued by staff-client", "link_viewed by link-holder"}
		if got := e.linkEvents(); !slices.Equal(got, want) {
			t.Errorf("history = %q, want %q", got, want)
		}
	})
}

// A link serves its bundle's bytes as they were when it was made, or
// nothing: a bundle rebuilt with other bytes, or gone, is refused, and
// the refusal costs no download.
func TestLinkBundleChanged(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l, token := e.create(reports.LinkOptions{})
		d, err := e.download(token, visitorA, fullDownload)
		if err != nil || d.Bundle.SHA256 != l.BundleSHA256 {
			t.Fatalf("download: %+v, %v", d, err)
		}
		if _, err := e.bundles.Replace(ctx, e.bundle.ID, bundle.Bytes("sbom.cdx.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`))); err != nil {
			t.Fatal(err)
		}
		if _, err := e.links.View(ctx, token, visitorA); !errors.Is(err, reports.ErrBundleChanged) {
			t.Errorf("View = %v, want the bundle changed", err)
		}
		if _, err := e.download(token, visitorA, fullDownload); !errors.Is(err, reports.ErrBundleChanged) {
			t.Errorf("Download = %v, want the bundle changed", err)
		}
		if _, _, err := e.links.Reissue(ctx, e.staff, l.ID, reports.LinkOptions{}); !errors.Is(err, reports.ErrBundleChanged) {
			t.Errorf("Reissue = %v, want the bundle changed", err)
		}
		if err := e.bundles.Remove(e.bundle.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.download(token, visitorA, fullDownload); !errors.Is(err, reports.ErrBundleChanged) {
			t.Errorf("Download of a removed bundle = %v", err)
		}
		if got := e.get(l.ID); got.Downloads != 1 {
			t.Errorf("downloads = %d, want 1", got.Downloads)
		}
		as, _, _ := e.links.ListAccess(ctx, e.staff, l.ID, reports.Page{})
		var statuses []int
		for _, a := range as {
			statuses = append(statuses, a.Status)
		}
		if !slices.Equal(statuses, []int{200, 409, 409, 409}) {
			t.Errorf("access log statuses = %v", statuses)
		}
		if !strings.Contains(e.logs.String(), "link refused: its bundle changed") {
			t.Error("a changed bundle is not logged as an error")
		}
	})
}

// A tenant's client sees its tenant's links and their access logs only;
// another tenant's read as unknown.
func TestLinkTenantIsolation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l, _ := e.create(reports.LinkOptions{})
		ls, _, err := e.links.List(ctx, e.acmeC, reports.LinkQuery{Ticket: "1"})
		if err != nil || len(ls) != 1 || ls[0].ID != l.ID {
			t.Errorf("acme lists its ticket's links: %v, %v", ls, err)
		}
		if ls, _, err := e.links.List(ctx, e.globexC, reports.LinkQuery{Ticket: "1"}); !errors.Is(err, reports.ErrNotFound) || len(ls) != 0 {
			t.Errorf("globex lists acme's ticket's links: %v, %v", ls, err)
		}
		if ls, _, err := e.links.List(ctx, e.globexC, reports.LinkQuery{}); err != nil || len(ls) != 0 {
			t.Errorf("globex lists its links: %v, %v", ls, err)
		}
		if _, _, err := e.links.List(ctx, e.globexC, reports.LinkQuery{TenantID: e.acme}); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("globex lists acme's links: %v", err)
		}
		_, _, errAcme := e.links.ListAccess(ctx, e.globexC, l.ID, reports.Page{})
		_, _, errNone := e.links.ListAccess(ctx, e.globexC, "0190f5e8-0000-7000-8000-000000000000", reports.Page{})
		if !errors.Is(errAcme, reports.ErrNotFound) || !errors.Is(errNone, reports.ErrNotFound) {
			t.Errorf("globex reads acme's access log: %v; an unknown one: %v", errAcme, errNone)
		}
		if _, _, err := e.links.ListAccess(ctx, e.acmeC, l.ID, reports.Page{}); err != nil {
			t.Errorf("acme reads its access log: %v", err)
		}
		if _, _, err := e.links.List(ctx, reports.Actor{ClientID: "nobody"}, reports.LinkQuery{}); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("a client bound to no tenant without tickets:admin: %v", err)
		}
	})
}

// Every link change and access is sent to the tenant, signed, as
// report_link.*; only report_link.created carries the token (and URL).
func TestLinkEventsAnnounced(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		sink := &hookSink{now: e.clock.now}
		srv := httptest.NewServer(sink)
		t.Cleanup(srv.Close)
		var err error
		if sink.pub, err = e.lic.WebhookKey(ctx, e.acme); err != nil {
			t.Fatal(err)
		}
		hook, err := e.lic.CreateWebhook(ctx, licensing.NewWebhook{TenantID: e.acme, URL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		l, token := e.create(reports.LinkOptions{Expiry: time.Hour})
		e.links.View(ctx, token, visitorA)
		e.download(token, visitorA, fullDownload)
		e.download(token, visitorA, resume) // not a new download: no event
		_, token2, err := e.links.Reissue(ctx, e.staff, l.ID, reports.LinkOptions{Expiry: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		n, _, _ := e.links.List(ctx, e.staff, reports.LinkQuery{Ticket: "1"})
		if _, err := e.links.Revoke(ctx, e.staff, n[1].ID, "done"); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(2 * time.Hour)
		e.create(reports.LinkOptions{Expiry: time.Minute})
		e.clock.advance(time.Hour)
		if _, err := e.links.ExpireDue(ctx); err != nil {
			t.Fatal(err)
		}

		ds, _, err := e.lic.WebhookDeliveries(ctx, e.acme, hook.ID, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(ds) - 1; i >= 0; i-- {
			if err := e.lic.DeliverWebhook(ctx, ds[i].ID, false); err != nil {
				t.Fatalf("deliver %s: %v", ds[i].EventType, err)
			}
		}
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.bad) > 0 {
			t.Fatalf("refused deliveries: %q", sink.bad)
		}
		var got []string
		for _, ev := range sink.events {
			if !strings.HasPrefix(ev.Type, "report_link.") {
				continue
			}
			got = append(got, ev.Type+" "+ev.Data.Status+" "+ev.Data.Reason)
			d := ev.Data
			if d.TenantID != e.acme || d.TicketID != e.ticket.ID || d.TicketNumber != 1 || d.LinkID == "" || d.ProductID != "app" ||
				d.Version != "1.4.0" || d.BundleSHA256 != e.bundle.SHA256 || d.DownloadsLeft == nil || d.ExpiresAt.IsZero() {
				t.Errorf("%s data = %+v", ev.Type, d)
			}
			switch {
			case ev.Type == webhooks.EventReportLinkCreated && d.LinkID == l.ID:
				if d.Token != token || d.URL != "https://vigil.example.com/r/"+token || d.Actor != "staff-client" {
					t.Errorf("created: token %q, url %q, actor %q", d.Token, d.URL, d.Actor)
				}
			case ev.Type == webhooks.EventReportLinkCreated && d.Reason == reports.ReasonReissued:
				if d.Token != token2 {
					t.Errorf("the reissued link's created event carries %q, want its token", d.Token)
				}
			case ev.Type == webhooks.EventReportLinkCreated:
				if d.Token == "" {
					t.Error("created without a token")
				}
			case d.Token != "" || d.URL != "":
				t.Errorf("%s carries the token or URL", ev.Type)
			}
		}
		want := []string{
			"report_link.created active ", "report_link.viewed active ", "report_link.downloaded active ",
			"report_link.revoked revoked reissued", "report_link.created active reissued", "report_link.revoked revoked done",
			"report_link.created active ", "report_link.expired expired ", // a revoked link does not expire
		}
		if !slices.Equal(got, want) {
			t.Errorf("events:\n%q\nwant\n%q", got, want)
		}
	})
}

// A link can be made in the transaction of a ticket's approval: the
// store's ticket transactions are link transactions.
func TestLinkCreateInApproval(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		d := e.open(e.acmeC, ask("", "agent")) // ticket 2
		b := e.addBundle(d.Ticket, "agent")
		o, err := reports.CheckLinkOptions(reports.LinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := e.lic.Outbox()
		var token string
		err = e.db.InTicketTx(ctx, func(tx reports.TicketTx) error {
			t2, err := tx.LockTicket(ctx, d.ID)
			if err != nil {
				return err
			}
			t2.Status = reports.TicketApproved
			if err := tx.UpdateTicket(ctx, t2); err != nil {
				return err
			}
			ltx, ok := tx.(reports.LinkTx)
			if !ok {
				t.Fatalf("%T is not a reports.LinkTx", tx)
			}
			_, token, err = e.links.CreateIn(ctx, ltx, out, reports.SystemActor, d.ID, b, o)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out.Queue(ctx)
		if v, err := e.links.View(ctx, token, visitorA); err != nil || v.Link.TicketNumber != 2 || v.Link.CreatedBy != reports.SystemActor {
			t.Errorf("View = %+v, %v", v, err)
		}
	})
}

// Without a bundle store, what needs a bundle says so.
func TestLinkBundlesUnconfigured(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newLinkEnv(t, dialect)
		ctx := t.Context()
		l, token := e.create(reports.LinkOptions{})
		none := e.linkService(nil)
		_, _, cerr := none.Create(ctx, e.staff, reports.NewLink{Ticket: "1", BundleID: e.bundle.ID})
		_, verr := none.View(ctx, token, visitorA)
		_, derr := none.Download(ctx, token, visitorA, fullDownload)
		_, _, rerr := none.Reissue(ctx, e.staff, l.ID, reports.LinkOptions{})
		for _, err := range []error{cerr, verr, derr, rerr} {
			if !errors.Is(err, reports.ErrBundlesUnavailable) {
				t.Errorf("got %v, want %v", err, reports.ErrBundlesUnavailable)
			}
		}
	})
}
