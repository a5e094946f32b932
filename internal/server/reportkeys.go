package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports"
	repapi "github.com/vigil-sec/vigil/reports/api"
	"github.com/vigil-sec/vigil/reports/attest"
)

// The report-signing public keys, served without authentication so that
// customers and their auditors can fetch them (`vigil verify --server`,
// cosign and openssl with the PEM). The sets change only on rotation and
// are cached for a few minutes; one key's PEM, named by its thumbprint,
// never changes.
const (
	reportKeysPath        = "/.well-known/vigil/report-keys"
	reportKeySetMaxAge    = "public, max-age=300"
	reportKeyImmutableAge = "public, max-age=86400, immutable"
)

// ReportKeys returns the installation's report-signing keys.
func (s *Server) ReportKeys() *reports.KeyRing { return s.reportKeys }

func (s *Server) registerReportKeys(mux *http.ServeMux) {
	mux.HandleFunc("GET "+reportKeysPath, func(w http.ResponseWriter, r *http.Request) {
		s.serveReportKeys(w, r, "application/jwk-set+json", reportKeySetMaxAge, attest.MarshalJWKS, "")
	})
	mux.HandleFunc("GET "+reportKeysPath+".pem", func(w http.ResponseWriter, r *http.Request) {
		s.serveReportKeys(w, r, "application/x-pem-file", reportKeySetMaxAge, attest.MarshalPEM, "")
	})
	// The staff's routes: list the keys with their status, rotate.
	keys := repapi.NewKeys(s.reportKeys, s.log)
	api := func(pattern string, fn http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireAnyScope(fn, ScopeReportsAdmin, ScopeAdmin)))
	}
	api("GET /api/v1/report-keys", keys.List)
	api("POST /api/v1/report-keys/rotate", keys.Rotate)
	// A mux wildcard is a whole segment: {kid}.pem is checked here.
	mux.HandleFunc("GET "+reportKeysPath+"/{file}", func(w http.ResponseWriter, r *http.Request) {
		kid, ok := strings.CutSuffix(r.PathValue("file"), ".pem")
		if !ok || kid == "" {
			httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", "no such key file: ask for "+reportKeysPath+"/{kid}.pem")
			return
		}
		s.serveReportKeys(w, r, "application/x-pem-file", reportKeyImmutableAge, attest.MarshalPEM, kid)
	})
}

// serveReportKeys writes the public keys (only the one whose ID is kid,
// when kid is set) encoded by marshal.
func (s *Server) serveReportKeys(w http.ResponseWriter, r *http.Request, contentType, cacheControl string, marshal func(...attest.PublicKey) ([]byte, error), kid string) {
	pubs, err := s.reportPublicKeys(r)
	if err != nil {
		s.log.ErrorContext(r.Context(), "report keys", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "INTERNAL", "the report-signing keys cannot be read; try again later")
		return
	}
	if kid != "" {
		i := slices.IndexFunc(pubs, func(k attest.PublicKey) bool { return k.ID == kid })
		if i < 0 {
			httpx.WriteError(w, http.StatusNotFound, "NOT_FOUND", "no report-signing key "+kid+"; see "+reportKeysPath)
			return
		}
		pubs = pubs[i : i+1]
	}
	body, err := marshal(pubs...)
	if err != nil {
		s.log.ErrorContext(r.Context(), "report keys", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "INTERNAL", "the report-signing keys cannot be encoded")
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", cacheControl)
	w.Write(body)
}

// reportPublicKeys are the key ring's public keys named by thumbprint.
func (s *Server) reportPublicKeys(r *http.Request) ([]attest.PublicKey, error) {
	keys, err := s.reportKeys.PublicKeys(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]attest.PublicKey, 0, len(keys))
	for _, k := range keys {
		pub, err := attest.NewPublicKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	return out, nil
}
