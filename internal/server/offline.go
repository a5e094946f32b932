package server

import (
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/offline"
)

// registerOffline mounts offline activation (HPKE-sealed requests and license files):
//
//	POST /api/v1/offline/activate              a sealed request in, the sealed answer out (no bearer token:
//	                                           the request carries the activation code or the client's proof)
//	GET  /api/v1/tenants/{id}/offline-key      the tenant's server key file (scope licensing:read)
func (s *Server) registerOffline(mux *http.ServeMux) {
	cfg := s.licensingAPIConfig() // the online activation's limits
	// Per client address only, as online (licapi.Config.ActivateRate): the
	// tenant a request names (its key ID) is public, so a tenant-wide
	// budget would be anyone's to spend.
	byAddr := httpx.NewRateLimiter(httpx.RateLimiterConfig{Rate: cfg.ActivateRate, Burst: cfg.ActivateBurst})
	mux.HandleFunc("POST /api/v1/offline/activate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if ok, wait := byAddr.Allow(httpx.ClientIP(r, cfg.TrustedProxies...)); !ok {
			httpx.WriteRateLimited(w, wait, "too many activation attempts")
			return
		}
		s.offlineActivate(w, r)
	})
	mux.Handle("GET /api/v1/tenants/{id}/offline-key",
		s.oauth.Middleware("")(requireLicensingScope(ScopeLicensingRead, http.HandlerFunc(s.getOfflineKey))))
}

func (s *Server) offlineActivate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.ContentLength > offline.MaxEnvelope {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "the sealed request is larger than 64 KiB")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, offline.MaxEnvelope))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "the sealed request is larger than 64 KiB")
		return
	}
	env, err := offline.ParseEnvelope(body, offline.PurposeRequest)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, licensing.CodeOfflineInvalid, "the body is not a sealed offline request: "+trimOffline(err))
		return
	}
	ans, err := s.lic.OfflineActivate(ctx, env)
	if err != nil {
		if e, ok := licensing.AsError(err); ok {
			status := e.Status()
			if e.Code == licensing.CodeOfflineReplayed {
				status = http.StatusConflict
			}
			httpx.WriteError(w, status, e.Code, e.Message)
			return
		}
		s.log.ErrorContext(ctx, "offline activation", slog.Any("error", err))
		httpx.WriteError(w, http.StatusInternalServerError, httpx.CodeInternal, "internal error; retry later")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ans)
}

func trimOffline(err error) string { return strings.TrimPrefix(err.Error(), "offline: ") }

func (s *Server) getOfflineKey(w http.ResponseWriter, r *http.Request) {
	sk, err := s.lic.OfflineKey(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, sk)
}
