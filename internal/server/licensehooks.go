package server

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing"
)

// Webhooks for licensing events, on the Management API: each tenant's
// public key for v1a signatures, its endpoints, and their deliveries.
// The licensing service (licensing/events.go) writes events with their
// effects; the job queue (internal/jobs/deliver.go) delivers them.

// sweeper is the job queue's DeliveryRunner: the licensing service makes
// the deliveries, and the periodic sweep (every jobs.Config.SweepInterval,
// a minute by default) also prunes what the server keeps for a while and
// that would otherwise only grow: the revocations of expired OAuth
// tokens and the expired idempotency keys of the Management API (the
// licensing service prunes its own stored answers). Each prune deletes
// in bounded batches (store.PruneBatch).
type sweeper struct{ s *Server }

func (w sweeper) DeliverWebhook(ctx context.Context, deliveryID string, lastAttempt bool) error {
	return w.s.lic.DeliverWebhook(ctx, deliveryID, lastAttempt)
}

func (w sweeper) SweepWebhooks(ctx context.Context) error {
	err := w.s.lic.SweepWebhooks(ctx)
	tokens, terr := w.s.oauth.PruneRevokedTokens(ctx)
	keys, kerr := w.s.db.PruneIdempotencyKeys(ctx, time.Now())
	if tokens+keys > 0 {
		w.s.log.DebugContext(ctx, "pruned expired rows", slog.Int64("revoked_tokens", tokens), slog.Int64("idempotency_keys", keys))
	}
	lerr := w.s.expireLinks(ctx) // links.go
	return errors.Join(err, terr, kerr, lerr)
}

// defaultDeliveryPage is the page size of the deliveries list without
// ?limit= (at most licensing.MaxDeliveriesPage).
const defaultDeliveryPage = 50

// registerLicenseWebhooks mounts the tenants' webhook endpoints for licensing events.
func (s *Server) registerLicenseWebhooks(mux *http.ServeMux) {
	api := func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireLicensingScope(scope, h)))
	}
	api("GET /api/v1/tenants/{id}/webhook-key", ScopeLicensingRead, s.getWebhookKey)
	api("POST /api/v1/tenants/{id}/webhooks", ScopeLicensingAdmin, s.createLicenseWebhook)
	api("GET /api/v1/tenants/{id}/webhooks", ScopeLicensingRead, s.listLicenseWebhooks)
	api("GET /api/v1/tenants/{id}/webhooks/{wid}", ScopeLicensingRead, s.getLicenseWebhook)
	api("DELETE /api/v1/tenants/{id}/webhooks/{wid}", ScopeLicensingAdmin, s.deleteLicenseWebhook)
	api("GET /api/v1/tenants/{id}/webhooks/{wid}/deliveries", ScopeLicensingRead, s.listLicenseDeliveries)
}

// webhookKey is the answer of GET /api/v1/tenants/{id}/webhook-key.
type webhookKey struct {
	TenantID  string `json:"tenant_id"`
	Algorithm string `json:"algorithm"` // ed25519
	Scheme    string `json:"scheme"`    // v1a
	PublicKey string `json:"public_key"`
}

func (s *Server) getWebhookKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pub, err := s.lic.WebhookKey(r.Context(), id)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, webhookKey{TenantID: id, Algorithm: "ed25519", Scheme: "v1a", PublicKey: pub})
}

type createLicenseWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	HMAC   bool     `json:"hmac"`
}

func (s *Server) createLicenseWebhook(w http.ResponseWriter, r *http.Request) {
	var req createLicenseWebhookRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if err := licensing.CheckWebhookURL(req.URL); err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return
	}
	if err := s.checkOutboundURL("url", req.URL); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if _, err := licensing.CheckWebhookEvents(req.Events); err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return
	}
	id := r.PathValue("id")
	cw, err := s.lic.CreateWebhook(r.Context(), licensing.NewWebhook{TenantID: id, URL: req.URL, Events: req.Events, HMAC: req.HMAC})
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tenants/"+id+"/webhooks/"+cw.ID)
	w.Header().Set("Cache-Control", "no-store") // the HMAC secret
	httpx.WriteJSON(w, http.StatusCreated, cw)
}

func (s *Server) listLicenseWebhooks(w http.ResponseWriter, r *http.Request) {
	ws, err := s.lic.ListWebhooks(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	// A tenant has at most WebhookConfig.MaxEndpoints: one page.
	httpx.WriteJSON(w, http.StatusOK, LicensingList("webhooks", ws, ""))
}

func (s *Server) getLicenseWebhook(w http.ResponseWriter, r *http.Request) {
	wh, err := s.lic.GetWebhook(r.Context(), r.PathValue("id"), r.PathValue("wid"))
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, wh)
}

func (s *Server) deleteLicenseWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.lic.DeleteWebhook(r.Context(), r.PathValue("id"), r.PathValue("wid")); err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listLicenseDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := limitParam(w, r, licensing.MaxDeliveriesPage)
	if !ok {
		return
	}
	limit = cmp.Or(limit, defaultDeliveryPage)
	ds, next, err := s.lic.WebhookDeliveries(r.Context(), r.PathValue("id"), r.PathValue("wid"), q.Get("cursor"), limit)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, LicensingList("deliveries", ds, next))
}
