package server

import (
	"net/http"
	"strings"

	repapi "github.com/vigil-sec/vigil/reports/api"
	"github.com/vigil-sec/vigil/reports/publish"
)

// Audit report bundles (package reports/publish, their handlers in
// reports/api): the Publisher builds them from the stored releases on the
// store, the blobs, the pipeline, the licensing platform and the
// report-signing keys; the staff's routes are mounted behind
// ScopeReportsAdmin. Customers reach theirs through secure links.

// ScopeReportsAdmin is the staff's scope of the audit report bundles:
// build one for any tenant, read it, download it. ScopeAdmin grants it.
const ScopeReportsAdmin = "reports:admin"

func init() { Scopes = append(Scopes, ScopeReportsAdmin) }

// newBundles makes the Publisher. A bundle's README points at the
// server's public key URL when a public URL is configured.
func (s *Server) newBundles() (*publish.Publisher, error) {
	cfg := publish.Config{
		Store: s.db, Blobs: s.blobs, Releases: s.reports, Pipeline: s.ci, Licensing: s.lic,
		Keys: s.reportKeys, Tickets: s.tickets, Logger: s.log,
	}
	if base := strings.TrimRight(s.cfg.PublicURL, "/"); base != "" {
		cfg.KeyURL = func(kid string) string { return base + reportKeysPath + "/" + kid + ".pem" }
	}
	return publish.New(cfg)
}

// Bundles returns the audit report bundles' publisher: what ticket
// approval builds with, and what secure links serve from
// (reports.BundleReader).
func (s *Server) Bundles() *publish.Publisher { return s.bundles }

// registerBundles mounts the bundles' routes.
func (s *Server) registerBundles(mux *http.ServeMux) {
	h := repapi.NewBundles(s.bundles, s.log)
	api := func(pattern string, fn http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireAnyScope(fn, ScopeReportsAdmin, ScopeAdmin)))
	}
	api("POST /api/v1/releases/{id}/bundles", h.Build)
	api("GET /api/v1/bundles/{id}", h.Get)
	api("GET /api/v1/bundles/{id}/download", h.Download)
}
