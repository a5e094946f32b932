package server

import "net/http"

// registerOffline mounts offline activation (HPKE-sealed requests and license files).
func (s *Server) registerOffline(mux *http.ServeMux) {}
