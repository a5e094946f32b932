package server

import "net/http"

// registerFindings mounts findings tracked across commits and the waivers API.
func (s *Server) registerFindings(mux *http.ServeMux) {}
