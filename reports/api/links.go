package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports"
)

// Error codes of the links' routes, beside the tickets'.
const (
	CodeBundleChanged        = "BUNDLE_CHANGED"
	CodeBundlesNotConfigured = "BUNDLES_NOT_CONFIGURED"
)

const (
	maxLinkBody = 16 << 10
	// The pages' Content-Security-Policy (with the style's hash added)
	// and the download's.
	linkPagePolicy = "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	downloadPolicy = "default-src 'none'; sandbox; frame-ancestors 'none'"
	// The rate limit per client address: sustained per second, and at
	// once (a landing page and a download in many ranges).
	defaultLinkRate  = 1
	defaultLinkBurst = 40
	maxFilenameLen   = 150
	rateLimitedWhat  = "too many requests to report links"
)

// LinksConfig configures the secure links' handlers.
type LinksConfig struct {
	// Rate and Burst limit the requests to /r/ per client address
	// (httpx.RateLimiter): sustained per second, and at once.
	Rate  rate.Limit
	Burst int
	// TrustedProxies whose X-Forwarded-For is believed (httpx.ClientIP):
	// the client address is what the rate limit and the access log use.
	TrustedProxies []netip.Prefix
	// PublicURL is the server's URL as customers reach it: its host is
	// the only Origin a download may come from, and the landing page's
	// `vigil verify --server` names it. Empty: the request's Host.
	PublicURL string
	// Logger receives the errors answered as 500; nil discards them.
	Logger *slog.Logger
}

// DefaultLinksConfig is one request a second per client address, 40 at
// once.
func DefaultLinksConfig() LinksConfig {
	return LinksConfig{Rate: defaultLinkRate, Burst: defaultLinkBurst}
}

// Links serves the secure links: the pages customers open, without
// authentication (the token in the path is the capability), and the
// links' part of the Management API, which the server mounts behind its
// OAuth middleware and the tickets' scopes:
//
//	GET  /r/{token}                       Landing   the landing page (uses no download)
//	POST /r/{token}/download              Download  the bundle, in ranges if asked
//	GET  /api/v1/tickets/{id}/links       List      tickets:write (its tenant's) or tickets:admin
//	GET  /api/v1/links/{id}/access        Access    the link's access log; tickets:write or tickets:admin
//	POST /api/v1/links/{id}/revoke        Revoke    tickets:admin
//	POST /api/v1/links/{id}/reissue       Reissue   tickets:admin; answers the new token, once
//
// Requests to /r/ are limited per client address (429). A client bound to
// a tenant gets 404 for another tenant's link or ticket.
type Links struct {
	svc     *reports.LinkService // nil: every route answers 503
	caller  Caller
	cfg     LinksConfig
	log     *slog.Logger
	limiter *httpx.RateLimiter
	tickets *Tickets // its error mapping
	origin  string   // host[:port] of PublicURL, "" without one
}

// NewLinks returns the links' handlers. svc may be nil while no bundle
// store is configured: every route then answers 503 "bundles are not
// configured".
func NewLinks(svc *reports.LinkService, caller Caller, cfg LinksConfig) *Links {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rate == 0 {
		cfg.Rate = defaultLinkRate
	}
	if cfg.Burst == 0 {
		cfg.Burst = defaultLinkBurst
	}
	h := &Links{svc: svc, caller: caller, cfg: cfg, log: cfg.Logger, tickets: NewTickets(nil, caller, cfg.Logger),
		limiter: httpx.NewRateLimiter(httpx.RateLimiterConfig{Rate: cfg.Rate, Burst: cfg.Burst})}
	if u, err := url.Parse(cfg.PublicURL); err == nil && cfg.PublicURL != "" {
		h.origin = strings.ToLower(u.Host)
	}
	return h
}

// ---- the pages customers open -------------------------------------------

// pageCSS is the pages' only style, allowed by its hash: the pages run no
// script and load nothing.
const pageCSS = `body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}` +
	`h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}` +
	`code,pre{font:13px ui-monospace,monospace;word-break:break-all}pre{background:#f4f5f7;padding:.6rem;white-space:pre-wrap}` +
	`button{font-size:1rem;padding:.5rem 1.2rem;cursor:pointer}.muted{color:#57606a}`

var linkPageCSP = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return linkPagePolicy + "; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

const pageHead = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
	`<meta name="robots" content="noindex, nofollow"><title>{{.Title}}</title><style>` + pageCSS + `</style></head><body>`

var landingPage = template.Must(template.New("landing").Funcs(template.FuncMap{"size": sizeText}).Parse(pageHead + `
<h1>Audit report: {{.Bundle.ProductName}} {{.Bundle.Version}}</h1>
<p>Prepared for <strong>{{.Bundle.TenantName}}</strong>{{with .Bundle.Ticket}}, ticket {{.}}{{end}}.</p>
<table>
<tr><th>Bundle</th><td><code>{{.Filename}}</code>, {{size .Bundle.Size}}</td></tr>
<tr><th>SHA-256</th><td><code>{{.Bundle.SHA256}}</code></td></tr>
<tr><th>Signed with</th><td>report-signing key <code>{{.Bundle.KeyID}}</code></td></tr>
<tr><th>Link expires</th><td>{{.Expires}}</td></tr>
<tr><th>Downloads left</th><td>{{.Link.DownloadsLeft}} of {{.Link.MaxDownloads}}</td></tr>
</table>
<form method="post" action="{{.Action}}"><p><button type="submit">Download the bundle</button></p></form>
<p class="muted">Opening this page uses no download. A download counts once, however your browser or download manager splits it; resuming it soon after counts no more.</p>
<h2>Files in the bundle</h2>
<table><tr><th>File</th><th>Size</th><th>SHA-256</th></tr>
{{range .Bundle.Files}}<tr><td><code>{{.Name}}</code></td><td>{{size .Size}}</td><td><code>{{.SHA256}}</code></td></tr>
{{end}}</table>
<h2>How to verify it</h2>
<p>Check that the download is this bundle, then its signature and every file's digest with Vigil's CLI, which fetches the report-signing keys from this server:</p>
<pre>sha256sum {{.Filename}}      # {{.Bundle.SHA256}}
vigil verify {{.Filename}} --server {{.Server}}</pre>
<p>Offline, with the public key (<code>{{.Server}}/.well-known/vigil/report-keys.pem</code>): <code>vigil verify {{.Filename}} --key report-key.pem</code>. The bundle's <code>README.txt</code> shows how to check it with cosign or openssl instead.</p>
</body></html>
`))

var messagePage = template.Must(template.New("message").Parse(pageHead + `
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
</body></html>
`))

// sizeText says a size in bytes for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB (%d bytes)", float64(n)/(1<<30), n)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// pageHeaders are the headers of every page and download of a link: no
// cache anywhere, no referrer (the URL is the capability), no sniffing,
// not indexed, and the strict CSP of a page.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("Content-Security-Policy", linkPageCSP)
}

// message writes a page that says one thing, with its status.
func message(w http.ResponseWriter, status int, title, text string) {
	var buf bytes.Buffer
	if err := messagePage.Execute(&buf, map[string]string{"Title": title, "Message": text}); err != nil {
		http.Error(w, title, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// goneText says why a link no longer serves, and nothing more.
var goneText = map[string][2]string{
	reports.LinkExpired: {"This link has expired", "This link has expired. Ask your contact for a new one."},
	reports.LinkRevoked: {"This link was revoked", "This link was revoked. Ask your contact for a new one."},
	reports.LinkUsedUp:  {"This link is used up", "This link has no downloads left. Ask your contact for a new one."},
}

// pageError answers a link's page or download that failed: the same 404
// for every token that names no link (malformed or unknown), 410 saying
// only why a link is gone, 409 for a bundle that changed, 503 while no
// bundles are configured.
func (h *Links) pageError(w http.ResponseWriter, r *http.Request, err error) {
	switch gone, ok := errors.AsType[*reports.LinkGoneError](err); {
	case ok:
		t := goneText[gone.Reason]
		message(w, http.StatusGone, t[0], t[1])
	case errors.Is(err, reports.ErrNotFound):
		message(w, http.StatusNotFound, "No such link", "This link does not exist. Check that you copied all of it.")
	case errors.Is(err, reports.ErrBundleChanged):
		message(w, http.StatusConflict, "This report is not available",
			"The report behind this link has changed since the link was made, so it is not served. Ask your contact for a new link.")
	case errors.Is(err, reports.ErrBundlesUnavailable):
		message(w, http.StatusServiceUnavailable, "Reports are not available", "bundles are not configured on this server")
	default:
		h.log.ErrorContext(r.Context(), "report link failed", slog.String("route", r.Pattern), slog.Any("error", err))
		message(w, http.StatusInternalServerError, "Something went wrong", "The report cannot be served right now. Try again later.")
	}
}

// allow applies the rate limit per client address; it answers 429
// itself.
func (h *Links) allow(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := h.limiter.Allow(h.clientIP(r)); !ok {
		httpx.WriteRateLimited(w, wait, rateLimitedWhat)
		return false
	}
	return true
}

func (h *Links) clientIP(r *http.Request) string { return httpx.ClientIP(r, h.cfg.TrustedProxies...) }

func (h *Links) visitor(r *http.Request) reports.Visitor {
	return reports.Visitor{Address: h.clientIP(r), UserAgent: r.UserAgent()}
}

// Landing serves GET /r/{token}: the landing page. It uses no download.
func (h *Links) Landing(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	if !h.allow(w, r) {
		return
	}
	if h.svc == nil {
		h.pageError(w, r, reports.ErrBundlesUnavailable)
		return
	}
	token := r.PathValue("token")
	v, err := h.svc.View(r.Context(), token, h.visitor(r))
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	var buf bytes.Buffer
	err = landingPage.Execute(&buf, map[string]any{
		"Title":    "Audit report: " + v.Bundle.ProductName + " " + v.Bundle.Version,
		"Bundle":   v.Bundle,
		"Link":     v.Link,
		"Filename": filename(v.Bundle),
		"Expires":  v.Link.ExpiresAt.UTC().Format("2 January 2006 15:04 MST"),
		"Action":   token + "/download", // relative to /r/, so that a path prefix of a proxy stays
		"Server":   h.server(r),
	})
	if err != nil {
		h.svc.FinishAccess(r.Context(), v.Access, http.StatusInternalServerError, 0)
		h.pageError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	n, _ := w.Write(buf.Bytes())
	h.svc.FinishAccess(r.Context(), v.Access, http.StatusOK, int64(n))
}

// server is the server's URL for `vigil verify --server`.
func (h *Links) server(r *http.Request) string {
	if h.cfg.PublicURL != "" {
		return strings.TrimRight(h.cfg.PublicURL, "/")
	}
	return "https://" + r.Host
}

// Download serves POST /r/{token}/download: the bundle as an attachment,
// with Range support (http.ServeContent on the stored bytes: memory stays
// flat whatever the size). A download counts once: see reports' package
// comment for how its ranges are told apart from a new download.
// Cross-site requests are refused (403).
func (h *Links) Download(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	if !h.allow(w, r) {
		return
	}
	if !h.sameOrigin(r) {
		message(w, http.StatusForbidden, "Download refused", "Downloads start from the link's own page.")
		return
	}
	if h.svc == nil {
		h.pageError(w, r, reports.ErrBundlesUnavailable)
		return
	}
	var size int64
	d, err := h.svc.Download(r.Context(), r.PathValue("token"), h.visitor(r), func(b reports.Bundle) (reports.DownloadRequest, error) {
		size = b.Size
		return classify(r, b.Size, etag(b))
	})
	if errors.Is(err, reports.ErrUnsatisfiable) {
		// As http.ServeContent answers a range outside the content.
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		message(w, http.StatusRequestedRangeNotSatisfiable, "Range not satisfiable", "The range asked for is not in the bundle.")
		return
	}
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", downloadPolicy)
	hd.Set("Content-Type", "application/zip")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename(d.Bundle)}))
	hd.Set("ETag", etag(d.Bundle))
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, d.Content)
	h.svc.FinishDownload(r.Context(), d, cw.statusCode(), cw.n)
}

// sameOrigin refuses a download that a browser sends from another site:
// by Sec-Fetch-Site when present (same-origin, or none: the user's own
// action), else by Origin when present (its host must be the server's).
// A request with neither (curl, a download manager) is not a browser's
// cross-site request. The landing page sends no referrer, so a browser
// that sends Origin without Sec-Fetch-Site sends "null": refused too.
func (h *Links) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	want := h.origin
	if want == "" {
		want = strings.ToLower(r.Host)
	}
	return strings.ToLower(u.Host) == want
}

// etag is the bundle's strong ETag: its digest.
func etag(b reports.Bundle) string { return `"sha256-` + b.SHA256 + `"` }

// filename is the attachment's name: vigil-report-PRODUCT-VERSION[-ticket-N].zip,
// in characters every file system and shell takes.
func filename(b reports.Bundle) string {
	name := "vigil-report-" + b.ProductID + "-" + b.Version
	if b.Ticket != "" {
		name += "-ticket-" + b.Ticket
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	if len(name) > maxFilenameLen {
		name = name[:maxFilenameLen]
	}
	return name + ".zip"
}

// classify reads a download request's Range as http.ServeContent will
// serve it for a bundle of size bytes with the ETag: no Range, an
// If-Range that does not match (on GET), or ranges adding up to more than the
// bundle (which ServeContent answers whole) ask for all of it from the
// first byte; otherwise the lowest byte asked for decides whether the
// request starts a download (byte 0) or goes on with one. A Range that
// ServeContent would refuse with 416 is an error.
func classify(r *http.Request, size int64, etag string) (reports.DownloadRequest, error) {
	rh := r.Header.Get("Range")
	req := reports.DownloadRequest{Range: rh}
	if rh == "" {
		return req, nil
	}
	// ServeContent honours If-Range on GET and HEAD only: another ETag, or
	// a date (the bundle has no modification time), asks for all of it.
	if ir := r.Header.Get("If-Range"); ir != "" && ir != etag && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return req, nil
	}
	ranges, err := parseRange(rh, size)
	if err != nil {
		return req, err
	}
	var sum int64
	lowest := size
	for _, rg := range ranges {
		sum += rg.length
		lowest = min(lowest, rg.start)
	}
	if len(ranges) == 0 || sum > size {
		return req, nil
	}
	req.Partial, req.Resume = true, lowest > 0
	return req, nil
}

type byteRange struct{ start, length int64 }

var errNoOverlap = errors.New("no range overlaps the bundle")

// parseRange is net/http's parseRange (fs.go), which http.ServeContent
// applies: "bytes=" then ranges "a-b", "a-" or "-n", clipped to the size;
// ranges starting past the end are dropped, and none left is
// errNoOverlap.
func parseRange(s string, size int64) ([]byteRange, error) {
	const b = "bytes="
	if !strings.HasPrefix(s, b) {
		return nil, errors.New("invalid range")
	}
	var ranges []byteRange
	noOverlap := false
	for ra := range strings.SplitSeq(s[len(b):], ",") {
		ra = strings.Trim(ra, " \t")
		if ra == "" {
			continue
		}
		start, end, ok := strings.Cut(ra, "-")
		if !ok {
			return nil, errors.New("invalid range")
		}
		start, end = strings.Trim(start, " \t"), strings.Trim(end, " \t")
		var rg byteRange
		if start == "" {
			if end == "" || end[0] == '-' {
				return nil, errors.New("invalid range")
			}
			i, err := strconv.ParseInt(end, 10, 64)
			if i < 0 || err != nil {
				return nil, errors.New("invalid range")
			}
			i = min(i, size)
			rg.start, rg.length = size-i, i
		} else {
			i, err := strconv.ParseInt(start, 10, 64)
			if err != nil || i < 0 {
				return nil, errors.New("invalid range")
			}
			if i >= size {
				noOverlap = true
				continue
			}
			rg.start = i
			if end == "" {
				rg.length = size - rg.start
			} else {
				i, err := strconv.ParseInt(end, 10, 64)
				if err != nil || rg.start > i {
					return nil, errors.New("invalid range")
				}
				i = min(i, size-1)
				rg.length = i - rg.start + 1
			}
		}
		ranges = append(ranges, rg)
	}
	if noOverlap && len(ranges) == 0 {
		return nil, errNoOverlap
	}
	return ranges, nil
}

// downloadStall is how long a download's write may wait for the client:
// the server's write timeout bounds a whole answer, which a large bundle
// over a slow line would outlast, so a download moves its write deadline
// on while bytes keep going out (at most once a second).
const downloadStall = time.Minute

// countingWriter counts the bytes of an answer's body and keeps its
// status, for the access log; it keeps the write deadline downloadStall
// ahead of the last write.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
	moved  time.Time // when the deadline was last moved
}

// stretch moves the write deadline on; a writer that cannot is left as
// it is.
func (c *countingWriter) stretch() {
	now := time.Now()
	if now.Sub(c.moved) < time.Second {
		return
	}
	c.moved = now
	_ = http.NewResponseController(c.ResponseWriter).SetWriteDeadline(now.Add(downloadStall)) // ErrNotSupported: no deadline to move
}

func (c *countingWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.stretch()
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) statusCode() int {
	if c.status == 0 {
		return http.StatusOK
	}
	return c.status
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// ---- the Management API ----------------------------------------------------

// linkWithToken is the answer that shows a link's token, once.
type linkWithToken struct {
	reports.Link
	Token string `json:"token"`
	URL   string `json:"url,omitempty"`
}

// reissueRequest is the body of POST /api/v1/links/{id}/reissue; zero
// values mean the defaults. ExpiresIn is in seconds.
type reissueRequest struct {
	ExpiresIn    int64 `json:"expires_in"`
	MaxDownloads int   `json:"max_downloads"`
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

// unavailable answers the management routes while no bundles are
// configured.
func (h *Links) unavailable(w http.ResponseWriter) bool {
	if h.svc != nil {
		return false
	}
	httpx.WriteError(w, http.StatusServiceUnavailable, CodeBundlesNotConfigured, "bundles are not configured")
	return true
}

// List serves GET /api/v1/tickets/{id}/links?limit=&cursor=: the ticket's
// links, oldest first.
func (h *Links) List(w http.ResponseWriter, r *http.Request) {
	if h.unavailable(w) {
		return
	}
	a, ok := h.tickets.actor(w, r)
	if !ok {
		return
	}
	limit, err := httpx.LimitParam(r, reports.MaxPageLimit)
	if err != nil {
		httpx.WriteErr(w, err)
		return
	}
	ls, next, err := h.svc.List(r.Context(), a, reports.LinkQuery{Ticket: r.PathValue("id"), Page: reports.Page{Cursor: r.URL.Query().Get("cursor"), Limit: limit}})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if ls == nil {
		ls = []reports.Link{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"links": ls, "next_cursor": next})
}

// Access serves GET /api/v1/links/{id}/access?limit=&cursor=: the link's
// access log, oldest first.
func (h *Links) Access(w http.ResponseWriter, r *http.Request) {
	if h.unavailable(w) {
		return
	}
	a, ok := h.tickets.actor(w, r)
	if !ok {
		return
	}
	limit, err := httpx.LimitParam(r, reports.MaxPageLimit)
	if err != nil {
		httpx.WriteErr(w, err)
		return
	}
	as, next, err := h.svc.ListAccess(r.Context(), a, r.PathValue("id"), reports.Page{Cursor: r.URL.Query().Get("cursor"), Limit: limit})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if as == nil {
		as = []reports.LinkAccess{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"access": as, "next_cursor": next})
}

// Revoke serves POST /api/v1/links/{id}/revoke {"reason"} (the body may
// be absent).
func (h *Links) Revoke(w http.ResponseWriter, r *http.Request) {
	if h.unavailable(w) {
		return
	}
	a, ok := h.tickets.actor(w, r)
	if !ok {
		return
	}
	var req revokeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	l, err := h.svc.Revoke(r.Context(), a, r.PathValue("id"), req.Reason)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, l)
}

// Reissue serves POST /api/v1/links/{id}/reissue {"expires_in",
// "max_downloads"} (the body may be absent): 201 with the new link and
// its token, shown this once.
func (h *Links) Reissue(w http.ResponseWriter, r *http.Request) {
	if h.unavailable(w) {
		return
	}
	a, ok := h.tickets.actor(w, r)
	if !ok {
		return
	}
	var req reissueRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.ExpiresIn < 0 || req.ExpiresIn > int64(reports.MaxLinkExpiry/time.Second) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField,
			fmt.Sprintf("expires_in %d: want 0 (the default, %d) to %d seconds", req.ExpiresIn, int64(reports.DefaultLinkExpiry/time.Second), int64(reports.MaxLinkExpiry/time.Second)))
		return
	}
	l, token, err := h.svc.Reissue(r.Context(), a, r.PathValue("id"), reports.LinkOptions{
		Expiry: time.Duration(req.ExpiresIn) * time.Second, MaxDownloads: req.MaxDownloads,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, linkWithToken{Link: l, Token: token, URL: h.svc.URL(token)})
}

// decodeBody reads an optional JSON body; it answers the error itself.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	if r.ContentLength == 0 {
		return true
	}
	if err := httpx.DecodeJSON(w, r, dst, maxLinkBody); err != nil {
		httpx.WriteErr(w, err)
		return false
	}
	return true
}

// writeError maps the links' errors to statuses, then the tickets'.
func (h *Links) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, reports.ErrBundlesUnavailable):
		httpx.WriteError(w, http.StatusServiceUnavailable, CodeBundlesNotConfigured, "bundles are not configured")
	case errors.Is(err, reports.ErrBundleChanged):
		httpx.WriteError(w, http.StatusConflict, CodeBundleChanged, safeMessage(err, reports.ErrBundleChanged))
	default:
		h.tickets.writeError(w, r, err)
	}
}
