package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/vigil-sec/vigil/reports"
	repapi "github.com/vigil-sec/vigil/reports/api"
)

// Secure links to report bundles: the service is reports' (links.go),
// the handlers reports/api's. The server mounts the customers' pages
// under /r/ without authentication (the token in the path is the
// capability; the handlers limit requests per client address) and the
// links' Management API behind OAuth and the tickets' scopes. Paths under
// /r/ are logged without their token (httpx.AccessLog, httpx.Recover).
//
// The bundles come from Config.Bundles; until one is configured the
// pages, downloads and reissues answer 503.

// linkPathPrefix is where the links' pages are; the segment after it is
// a token.
const linkPathPrefix = "/r/"

// newLinks makes the links' service on the store, the bundles and the
// licensing service (for the report_link.* webhooks); the tokens' hash
// key is derived from the seal key.
func (s *Server) newLinks() (*reports.LinkService, error) {
	bundles := s.cfg.Bundles
	if bundles == nil {
		bundles = lazyBundles{s} // the publisher, made later in New
	}
	return reports.NewLinkService(s.db, bundles, s.lic, s.cfg.SealKey, reports.LinkConfig{
		BaseURL: s.cfg.PublicURL,
		Logger:  s.log,
	})
}

// Links returns the secure links' service: the approval of a ticket makes
// its link with LinkService.Create (or CreateIn, in the approval's
// transaction).
func (s *Server) Links() *reports.LinkService { return s.links }

// linksConfig is Config.Links or the default, with the server's trusted
// proxies (those of the Licensing API), public URL and logger.
func (s *Server) linksConfig() repapi.LinksConfig {
	cfg := repapi.DefaultLinksConfig()
	if s.cfg.Links != nil {
		cfg = *s.cfg.Links
	}
	cfg.TrustedProxies = s.licensingAPIConfig().TrustedProxies
	cfg.PublicURL = s.cfg.PublicURL
	cfg.Logger = s.log
	return cfg
}

// registerLinks mounts the links' pages and their Management API.
func (s *Server) registerLinks(mux *http.ServeMux) {
	h := repapi.NewLinks(s.links, ticketActor, s.linksConfig())
	mux.HandleFunc("GET "+linkPathPrefix+"{token}", h.Landing)
	mux.HandleFunc("POST "+linkPathPrefix+"{token}/download", h.Download)

	api := func(pattern string, fn http.HandlerFunc, scope string, or ...string) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireAnyScope(fn, scope, append(or, ScopeAdmin)...)))
	}
	api("GET /api/v1/tickets/{id}/links", h.List, ScopeTicketsWrite, ScopeTicketsAdmin)
	api("GET /api/v1/links/{id}/access", h.Access, ScopeTicketsWrite, ScopeTicketsAdmin)
	api("POST /api/v1/links/{id}/revoke", h.Revoke, ScopeTicketsAdmin)
	api("POST /api/v1/links/{id}/reissue", h.Reissue, ScopeTicketsAdmin)
}

// expireLinks records the expiry of the links that reached it: the
// periodic sweep's part for links (sweeper.SweepWebhooks).
func (s *Server) expireLinks(ctx context.Context) error {
	n, err := s.links.ExpireDue(ctx)
	if n > 0 {
		s.log.InfoContext(ctx, "recorded expired report links", slog.Int("count", n))
	}
	return err
}
