package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/admission"
	"github.com/vigil-sec/vigil/ci/webhook"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
	licapi "github.com/vigil-sec/vigil/licensing/api"
	"github.com/vigil-sec/vigil/licensing/oauth"
	"github.com/vigil-sec/vigil/reports"
	repapi "github.com/vigil-sec/vigil/reports/api"
	"github.com/vigil-sec/vigil/reports/notify"
	"github.com/vigil-sec/vigil/reports/publish"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// The scopes of the Management API. AdminScope grants every other.
const (
	ScopeProjectsAdmin = "projects:admin"
	ScopeScansRead     = "scans:read"
	ScopeScansWrite    = "scans:write"
	ScopeGateRead      = "gate:read"
	ScopeAdmin         = oauth.AdminScope
)

// Scopes lists every scope, for help texts and validation.
var Scopes = []string{ScopeAdmin, ScopeProjectsAdmin, ScopeScansRead, ScopeScansWrite, ScopeGateRead}

// Config configures a Server. DB, Blobs and SealKey are required.
type Config struct {
	DB    *store.DB
	Blobs *store.Blobs
	// SealKey (SealKeySize bytes) encrypts the projects' webhook secrets
	// in the store. Every process of one installation needs the same key.
	SealKey []byte
	// Engines is the engine table; nil means engines.Worker.
	Engines []scanner.Engine
	// InsecureRegistries are registry hosts (host[:port]) reached over
	// plain HTTP. Loopback and private addresses always are.
	InsecureRegistries []string
	// RegistryTransport carries the server's registry requests (image
	// pulls, and the tag lookups of the gate and admission); nil means
	// one that dials through the outbound policy (Outbound). A transport
	// given here bypasses that policy: tests only.
	RegistryTransport http.RoundTripper
	// RegistryToken authenticates registry notifications at
	// /hooks/registry; empty leaves that endpoint unmounted.
	RegistryToken string
	// OAuth configures the token server; zero means oauth.DefaultConfig.
	OAuth *oauth.Config
	// Jobs configures the job queue; nil means jobs.DefaultConfig. Its
	// Scans, Periodic, Statuses and Logger are set by New.
	Jobs *jobs.Config
	// Licensing configures the licensing platform; nil means
	// licensing.DefaultConfig. Its Logger is set by New when nil.
	Licensing *licensing.Config
	// LicensingAPI configures the Licensing API (its activation rate
	// limits, also those of offline activation); nil means
	// licapi.DefaultConfig. Its Logger is set by the server.
	LicensingAPI *licapi.Config
	// AdmissionFailOpen admits images whose gate is unknown or pending.
	AdmissionFailOpen bool
	// AdmissionClientCert makes /admission/v1/validate refuse requests
	// without a client certificate that the TLS server verified (see
	// httpx.RequestClientCerts); the rest of the API does not need one.
	AdmissionClientCert bool
	// PublicURL is the server's base URL as clients reach it
	// (https://vigil.example.com:8443): the issuer ("iss") of its access
	// tokens, unless OAuth sets one, and the base of the links in commit
	// statuses. Every process of one installation needs the same.
	PublicURL string
	// ForgeHTTPClient posts commit statuses; nil means one with a 30s
	// timeout that dials through Outbound.
	ForgeHTTPClient *http.Client
	// Outbound is where the server may connect: git remotes, registries,
	// forges, licensing webhook receivers (see httpx.OutboundPolicy).
	// nil means the default policy: https and ssh to public addresses
	// only. Clients a caller sets (ForgeHTTPClient,
	// Licensing.Webhooks.HTTPClient) are used as they are.
	Outbound *httpx.OutboundPolicy
	// ReclaimOnStart makes Start run again, at once, the scans that a dead
	// process left running (jobs.Client.Reclaim), instead of waiting for
	// River's rescuer (Jobs.RescueAfter). Set it only when no other
	// process works the same queue: the single-host SQLite deployment.
	ReclaimOnStart bool
	// RescanDays is how far back a project's scheduled rescan looks for
	// image digests to scan again. Default ci.DefaultRescanDays.
	RescanDays int
	// TicketsAutoApprove is the support tickets' auto-approval policy:
	// reports.AutoApproveOff ("" too) or reports.AutoApproveEntitled.
	TicketsAutoApprove string
	// TrustedProxies are the reverse proxies in front of the server:
	// their X-Forwarded-For names the client that every per-address
	// limit counts (webhooks, OAuth, activation, secure links) and that
	// access logs record (httpx.ClientIP). Empty: the TCP peer, and the
	// header is ignored, since any client can set it. A prefix given
	// here overrides those of OAuth and LicensingAPI when they have none.
	TrustedProxies []netip.Prefix
	// Bundles reads the stored report bundles that secure links serve
	// (links.go); nil means the server's own publisher (Server.Bundles),
	// which ticket approval builds them with. For tests.
	Bundles reports.BundleReader
	// Links configures the secure links' pages (their rate limit per
	// client address); nil means repapi.DefaultLinksConfig. Its
	// TrustedProxies, PublicURL and Logger are the server's.
	Links  *repapi.LinksConfig
	Logger *slog.Logger

	// SMTP, when set, is the mail server the secure links of approved
	// tickets are mailed through to the tickets' contact addresses
	// (mail.go, reports/notify); SMTPRootCAs verify its certificate (nil:
	// the system's). The server dials it through Outbound.
	SMTP        *notify.Settings
	SMTPRootCAs *x509.CertPool
}

// Server is the Vigil service.
type Server struct {
	cfg     Config
	db      *store.DB
	blobs   *store.Blobs
	log     *slog.Logger
	oauth   *oauth.Server
	queue   *jobs.Client
	lic     *licensing.Service
	tickets *reports.TicketService
	links   *reports.LinkService
	ci      *ci.Service // the pipeline
	reports *reports.Service
	bundles *publish.Publisher // bundles.go
	seal    *ci.Sealer
	// reportKeys signs audit reports (reportkeys.go)
	reportKeys *reports.KeyRing
	metrics    *metrics
	http       *httpx.Metrics
	handler    http.Handler

	// mailer mails the secure links (mail.go); nil without Config.SMTP
	mailer *notify.Mailer
	// schedules cuts the products' scheduled releases (reportschedules.go)
	schedules *reports.Scheduler

	// outbound.go: the outbound policy and the clients made from it
	outbound          *httpx.OutboundPolicy
	git               *source.Policy
	registryTransport http.RoundTripper
}

// TestScanDelayEnv names an environment variable for tests only: a Go
// duration that every scan attempt waits, once marked running, before it
// starts work (ci.Config.ScanDelay), so that a test can kill the process
// in the middle of a scan. Never set it in production.
const TestScanDelayEnv = "VIGIL_TEST_SCAN_DELAY"

// New makes a server on a migrated store (store and job queue: see
// store.DB.Migrate and jobs.Migrate). It starts nothing: call Start to
// work scans, and serve Handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("server: Config.DB is required")
	case cfg.Blobs == nil:
		return nil, errors.New("server: Config.Blobs is required")
	}
	seal, err := ci.NewSealer(cfg.SealKey)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, db: cfg.DB, blobs: cfg.Blobs, log: log, seal: seal}
	var scanDelay time.Duration
	if v := os.Getenv(TestScanDelayEnv); v != "" {
		if scanDelay, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("server: $%s: %w", TestScanDelayEnv, err)
		}
		log.Warn("test hook: every scan attempt waits first", slog.String("env", TestScanDelayEnv), slog.Duration("delay", scanDelay))
	}

	s.initOutbound()

	if err := validPublicURL(cfg.PublicURL); err != nil {
		return nil, err
	}
	ocfg := oauth.DefaultConfig()
	if cfg.OAuth != nil {
		ocfg = *cfg.OAuth
	}
	if cfg.PublicURL != "" && (cfg.OAuth == nil || cfg.OAuth.Issuer == "") {
		ocfg.Issuer = strings.TrimRight(cfg.PublicURL, "/")
	}
	if ocfg.Logger == nil {
		ocfg.Logger = log
	}
	if ocfg.Scopes == nil {
		ocfg.Scopes = Scopes // an admin client may ask for a narrower token
	}
	if ocfg.TrustedProxies == nil {
		ocfg.TrustedProxies = cfg.TrustedProxies
	}
	if ocfg.TenantScopes == nil {
		ocfg.TenantScopes = TenantScopes
	}
	if ocfg.Pepper == nil {
		if ocfg.Pepper, err = OAuthPepper(cfg.SealKey); err != nil {
			return nil, err
		}
	}
	if s.oauth, err = oauth.New(ctx, cfg.DB, ocfg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}

	if s.lic, err = s.newLicensing(ctx); err != nil {
		return nil, err
	}
	if s.reportKeys, err = reports.NewKeyRing(cfg.DB, cfg.SealKey); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.tickets, err = s.newTickets(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.links, err = s.newLinks(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}

	jcfg := jobs.DefaultConfig()
	if cfg.Jobs != nil {
		jcfg = *cfg.Jobs
	}
	jcfg.Scans = jobRunner{s}
	jcfg.Periodic = jobRunner{s}
	jcfg.Statuses = jobRunner{s}
	jcfg.Deliveries = sweeper{s} // licensehooks.go
	if cfg.SMTP != nil {
		jcfg.Mails = mailRunner{s} // mail.go
	}
	jcfg.Logger = log
	if s.queue, err = jobs.New(cfg.DB, &jcfg); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.mailer, err = s.newMailer(); err != nil {
		return nil, err
	}
	s.lic.SetDeliveryQueue(s.queue)

	s.http = httpx.NewMetrics()
	s.metrics = newMetrics(s.http.Registry, cfg.DB)
	if s.ci, err = s.newPipeline(scanDelay); err != nil {
		return nil, err
	}
	if s.reports, err = s.newReports(); err != nil {
		return nil, err
	}
	if s.bundles, err = s.newBundles(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.schedules, err = s.newSchedules(); err != nil {
		return nil, err
	}
	if s.handler, err = s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// Pipeline returns the pipeline service: what the API, the hooks and the
// job queue call to enqueue, run and judge scans.
func (s *Server) Pipeline() *ci.Service { return s.ci }

// OAuth returns the token server, to manage clients.
func (s *Server) OAuth() *oauth.Server { return s.oauth }

// Credentials are a client's ID and secret, as `vigil clients create
// --json` prints them.
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Bootstrap makes an admin client when the store has never had a client,
// and returns its credentials (shown once: the secret is not stored).
// created is false, with empty credentials, when clients exist or one was
// bootstrapped before. Of servers starting at once on one empty store,
// exactly one creates the admin client (oauth.Server.CreateFirstClient).
func (s *Server) Bootstrap(ctx context.Context) (creds Credentials, created bool, err error) {
	id, secret, created, err := s.oauth.CreateFirstClient(ctx, "admin", []string{ScopeAdmin})
	if err != nil {
		return Credentials{}, false, fmt.Errorf("server: bootstrap: %w", err)
	}
	if !created {
		return Credentials{}, false, nil
	}
	return Credentials{ClientID: id, ClientSecret: secret}, true, nil
}

// Start starts working scans in this process: with Config.ReclaimOnStart
// it first makes the scans a dead process left running run again; it
// schedules the projects' rescans, starts the workers, and queues a job
// for every queued scan that lost its own (a crash between the two
// writes).
func (s *Server) Start(ctx context.Context) error {
	if s.cfg.ReclaimOnStart {
		if err := s.reclaim(ctx); err != nil {
			return err
		}
	}
	if err := s.ci.ScheduleRescans(ctx); err != nil {
		return err
	}
	if err := s.schedules.ScheduleAll(ctx); err != nil {
		return err
	}
	if err := s.queue.Start(ctx); err != nil {
		return err
	}
	n, err := s.queue.ResumeQueued(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "resumed queued scans", slog.Int("count", n))
	}
	return nil
}

// Stop stops fetching scans; running ones have the queue's stop timeout
// to finish, then are cancelled and retried by a later start.
func (s *Server) Stop(ctx context.Context) error { return s.queue.Stop(ctx) }

// Handler serves everything: the API, the OAuth endpoints, the webhooks,
// health and metrics.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	s.oauth.Register(mux)

	api := func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireScope(scope, h)))
	}
	api("POST /api/v1/projects", ScopeProjectsAdmin, s.createProject)
	api("GET /api/v1/projects", ScopeScansRead, s.listProjects)
	api("GET /api/v1/projects/{name}", ScopeScansRead, s.getProject)
	s.registerProjects(mux)
	api("POST /api/v1/scans", ScopeScansWrite, s.createScan)
	api("GET /api/v1/scans", ScopeScansRead, s.listScans)
	api("GET /api/v1/scans/{id}", ScopeScansRead, s.getScan)
	api("GET /api/v1/scans/{id}/{format}", ScopeScansRead, s.downloadReport)
	api("GET /api/v1/gate", ScopeGateRead, s.gate)
	s.registerFindings(mux)
	s.registerLicensing(mux)
	s.registerOffline(mux)
	s.registerLicenseWebhooks(mux)
	s.registerReportKeys(mux)
	s.registerClients(mux)
	s.registerTickets(mux)
	s.registerLinks(mux)
	s.registerReleases(mux)
	s.registerBundles(mux)
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", "no such API endpoint; see /api/v1/openapi.json")
	})

	hooks, err := webhook.Handler(webhook.Config{Secrets: hookSecrets{s}, Enqueuer: hookEnqueuer{s}, Logger: s.log, TrustedProxies: s.cfg.TrustedProxies})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	mux.Handle("/hooks/", hooks)
	if s.cfg.RegistryToken != "" {
		reg, err := webhook.RegistryHandler(webhook.RegistryConfig{Token: s.cfg.RegistryToken, Enqueuer: hookEnqueuer{s}, Logger: s.log, TrustedProxies: s.cfg.TrustedProxies})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		mux.Handle("/hooks/registry", reg)
	}
	adm, err := admission.Handler(admission.Config{Gates: admissionGates{s}, FailOpen: s.cfg.AdmissionFailOpen, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.cfg.AdmissionClientCert {
		adm = httpx.RequireClientCert(adm)
	}
	mux.Handle("POST /admission/v1/validate", adm)

	mux.HandleFunc("GET /healthz", httpx.Health)
	mux.Handle("GET /readyz", httpx.Ready(s.db.Ping))
	mux.Handle("GET /metrics", s.http.Handler())

	// idempotent passes the request itself on to mux, which sets
	// r.Pattern on it for the metrics.
	var h http.Handler = s.http.Middleware(s.idempotent(mux))
	h = httpx.Recover(s.log, linkPathPrefix)(h)
	h = httpx.LimitBodyByRoute(mux, httpx.DefaultBodyLimit, bodyLimits)(h)
	h = httpx.AccessLog(s.log, linkPathPrefix)(h) // a link's path holds its token
	h = httpx.RequestID(h)
	h = httpx.SecurityHeaders("/oauth2/")(h)
	return h, nil
}

// bodyLimits are the routes whose bodies may be larger than
// httpx.DefaultBodyLimit, by mux pattern; their handlers bound them again.
var bodyLimits = map[string]int64{
	"/hooks/":                     webhook.MaxBodySize,
	"/hooks/registry":             webhook.MaxBodySize,
	"POST /admission/v1/validate": admission.MaxReviewSize,
}

// requireScope lets through tokens with the scope or the admin scope.
// oauth.Middleware has verified the token and put its claims in the
// context.
func requireScope(scope string, next http.Handler) http.Handler {
	return requireAnyScope(next, scope, ScopeAdmin)
}

// requireAnyScope lets through tokens with any of the scopes; a refusal
// names them all, the first as the one the call needs.
func requireAnyScope(next http.Handler, scope string, or ...string) http.Handler {
	msg := fmt.Sprintf("this call needs a token with scope %q", scope)
	for i, o := range or {
		if i == 0 {
			msg += fmt.Sprintf(" (or %q", o)
		} else {
			msg += fmt.Sprintf(", or %q", o)
		}
	}
	if len(or) > 0 {
		msg += ")"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := oauth.ClaimsFromContext(r.Context())
		if !ok || !(c.HasScope(scope) || slices.ContainsFunc(or, c.HasScope)) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="vigil", error="insufficient_scope", scope=%q`, scope))
			httpx.WriteError(w, http.StatusForbidden, "INSUFFICIENT_SCOPE", msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// storeError maps a store error to an API error: the sentinel's own text
// is safe to show, the rest of the message is for logs.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ci.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", safeMessage(err))
	case errors.Is(err, store.ErrConflict), errors.Is(err, ci.ErrConflict):
		httpx.WriteError(w, http.StatusConflict, "CONFLICT", safeMessage(err))
	case errors.Is(err, store.ErrInvalid), errors.Is(err, ci.ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidField, safeMessage(err))
	default:
		s.log.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		httpx.WriteErr(w, err)
	}
}

// safeMessage is the text of errors the store built from its sentinels
// and user input ("project \"x\": not found", "invalid input: …"); an
// error that went through the database reads as the bare sentinel.
func safeMessage(err error) string {
	return httpx.SafeMessage(err, store.ErrNotFound, store.ErrConflict, store.ErrInvalid, ci.ErrNotFound, ci.ErrConflict, ci.ErrInvalid)
}

// now is the gate's clock.
func now() time.Time { return time.Now() }
