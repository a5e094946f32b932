package server

import (
	"fmt"
	"net/http"

	"github.com/vigil-sec/vigil/reports"
	reportsapi "github.com/vigil-sec/vigil/reports/api"
)

// The releases of products (package reports, its handlers in
// reports/api), mounted behind the Management API's scopes: making a
// release needs projects:admin (it may queue scans), reading one
// scans:read.

// newReports makes the reports service on the store, the pipeline and the
// licensing platform; the images a release asks to scan are held to the
// outbound policy as those of POST /api/v1/scans are.
func (s *Server) newReports() (*reports.Service, error) {
	svc, err := reports.New(reports.Config{Store: s.db, Pipeline: s.ci, Licensing: s.lic, CheckImage: s.checkRegistry, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return svc, nil
}

// Reports returns the reports service: the releases of products.
func (s *Server) Reports() *reports.Service { return s.reports }

// registerReleases mounts the release routes of reports/api.
func (s *Server) registerReleases(mux *http.ServeMux) {
	h := reportsapi.New(s.reports, reportsapi.Config{Logger: s.log})
	api := func(pattern, scope string) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireScope(scope, h)))
	}
	api("POST /api/v1/releases", ScopeProjectsAdmin)
	api("GET /api/v1/releases", ScopeScansRead)
	api("GET /api/v1/releases/{id}", ScopeScansRead)
}
