package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/licensing"
	licapi "github.com/vigil-sec/vigil/licensing/api"
)

// The scopes of the licensing part of the Management API.
// ScopeLicensingAdmin grants ScopeLicensingRead; ScopeAdmin grants both.
const (
	ScopeLicensingRead  = "licensing:read"
	ScopeLicensingAdmin = "licensing:admin"
)

// The licensing scopes join Scopes here, so that this file holds all of
// the licensing routes' wiring.
func init() { Scopes = append(Scopes, ScopeLicensingRead, ScopeLicensingAdmin) }

// Limits on licensing input.
const (
	maxLicensingName = 200
	maxSeats         = 1_000_000
	maxLease         = 366 * 24 * time.Hour
)

// productIDRE is what applications embed and send as N-ProductId.
var productIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// licensingAPIPatterns are the routes of the Licensing API (package
// licensing/api), mounted on the server's mux as they are so that the
// Management API's /api/ fallback and metrics see the real patterns.
var licensingAPIPatterns = []string{
	"POST /api/v1/activate",
	"GET /api/v1/activation",
	"POST /api/v1/activation/refresh",
	"POST /api/v1/activation/features/{key}/{op}",
	"DELETE /api/v1/activation",
}

// newLicensing makes the licensing service from the server's config.
func (s *Server) newLicensing(ctx context.Context) (*licensing.Service, error) {
	cfg := licensing.DefaultConfig()
	if s.cfg.Licensing != nil {
		cfg = *s.cfg.Licensing
	} else if s.cfg.PublicURL != "" {
		// The Licensing API's tokens name the server as the Management
		// API's do (RFC 9068 iss).
		cfg.Issuer = strings.TrimRight(s.cfg.PublicURL, "/")
	}
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	if cfg.Webhooks.HTTPClient == nil {
		cfg.Webhooks.HTTPClient = s.webhookClient(cfg.Webhooks.Timeout)
	}
	if cfg.Secret == nil {
		var err error
		if cfg.Secret, err = LicensingSecret(s.cfg.SealKey); err != nil {
			return nil, err
		}
	}
	svc, err := licensing.New(ctx, s.db, cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return svc, nil
}

// licensingAPIConfig is Config.LicensingAPI or the default, with the
// server's logger.
func (s *Server) licensingAPIConfig() licapi.Config {
	cfg := licapi.DefaultConfig()
	if s.cfg.LicensingAPI != nil {
		cfg = *s.cfg.LicensingAPI
	}
	cfg.Logger = s.log
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = s.cfg.TrustedProxies
	}
	return cfg
}

// Licensing returns the licensing service.
func (s *Server) Licensing() *licensing.Service { return s.lic }

// registerLicensing mounts the Licensing API (licensing/api, its own
// tokens and nonce chain) and the licensing part of the Management API
// (OAuth2 tokens with the licensing scopes).
func (s *Server) registerLicensing(mux *http.ServeMux) {
	acfg := s.licensingAPIConfig()
	lic := licapi.New(s.lic, acfg)
	for _, p := range licensingAPIPatterns {
		mux.Handle(p, lic)
	}

	api := func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireLicensingScope(scope, h)))
	}
	api("POST /api/v1/tenants", ScopeLicensingAdmin, s.createTenant)
	api("GET /api/v1/tenants", ScopeLicensingRead, s.listTenants)
	api("GET /api/v1/tenants/{id}", ScopeLicensingRead, s.getTenant)
	api("PATCH /api/v1/tenants/{id}", ScopeLicensingAdmin, s.renameTenant)
	api("POST /api/v1/tenants/{id}/suspend", ScopeLicensingAdmin, s.setTenantStatus(true))
	api("POST /api/v1/tenants/{id}/resume", ScopeLicensingAdmin, s.setTenantStatus(false))
	api("POST /api/v1/products", ScopeLicensingAdmin, s.createProduct)
	api("GET /api/v1/products", ScopeLicensingRead, s.listProducts)
	api("GET /api/v1/products/{id}", ScopeLicensingRead, s.getProductWithSchedule) // reportschedules.go
	api("PATCH /api/v1/products/{id}", ScopeLicensingAdmin, s.updateProduct)       // name and report schedule
	api("POST /api/v1/entitlements", ScopeLicensingAdmin, s.createEntitlement)
	api("GET /api/v1/entitlements", ScopeLicensingRead, s.listEntitlements)
	api("GET /api/v1/entitlements/{id}", ScopeLicensingRead, s.getEntitlement)
	api("PATCH /api/v1/entitlements/{id}", ScopeLicensingAdmin, s.updateEntitlement)
	api("POST /api/v1/entitlements/{id}/suspend", ScopeLicensingAdmin, s.setEntitlementStatus(true))
	api("POST /api/v1/entitlements/{id}/resume", ScopeLicensingAdmin, s.setEntitlementStatus(false))
}

// requireLicensingScope lets through tokens with the scope, the
// licensing admin scope or the admin scope.
func requireLicensingScope(scope string, next http.Handler) http.Handler {
	return requireAnyScope(next, scope, ScopeLicensingAdmin, ScopeAdmin)
}

// Validation shared by the API and the CLI. Each returns an error whose
// message names the field as the API calls it.

// CheckLicensingName trims and checks the name of a tenant or product.
func CheckLicensingName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errors.New("name is required")
	}
	if err := httpx.CheckIdentifier("name", name, maxLicensingName); err != nil {
		return "", err
	}
	return name, nil
}

// CheckProductID checks a product ID chosen by the caller ("" for one made
// by Vigil).
func CheckProductID(id string) error {
	if id != "" && !productIDRE.MatchString(id) {
		return fmt.Errorf("id %q: want 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit", id)
	}
	return nil
}

// CheckSeats checks an entitlement's seat count.
func CheckSeats(n int) error {
	if n < 1 || n > maxSeats {
		return fmt.Errorf("seats %d: want 1 to %d", n, maxSeats)
	}
	return nil
}

// CheckLease checks an entitlement's lease (0 for the default).
func CheckLease(d time.Duration) error {
	if d != 0 && (d < time.Second || d > maxLease || d%time.Second != 0) {
		return fmt.Errorf("lease %v: want whole seconds from 1s to %v", d, maxLease)
	}
	return nil
}

// CheckExpiry checks an entitlement's expiry (zero for never).
func CheckExpiry(t, now time.Time) error {
	if !t.IsZero() && !t.After(now) {
		return fmt.Errorf("expiry %s is not in the future", t.UTC().Format(time.RFC3339))
	}
	return nil
}

type createTenantRequest struct {
	Name string `json:"name"`
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	var req createTenantRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	name, err := CheckLicensingName(req.Name)
	if err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return
	}
	t, err := s.lic.CreateTenant(r.Context(), name)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/tenants/"+t.ID)
	httpx.WriteJSON(w, http.StatusCreated, t)
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	page, ok := pageOf(w, r)
	if !ok {
		return
	}
	ts, next, err := s.lic.ListTenants(r.Context(), page)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, LicensingList("tenants", ts, next))
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := s.lic.GetTenant(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

func (s *Server) setTenantStatus(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, id := r.Context(), r.PathValue("id")
		set := s.lic.ResumeTenant
		if suspend {
			set = s.lic.SuspendTenant
		}
		if err := set(ctx, id); err != nil {
			s.writeLicensingError(w, r, err)
			return
		}
		t, err := s.lic.GetTenant(ctx, id)
		if err != nil {
			s.writeLicensingError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, t)
	}
}

type createProductRequest struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) createProduct(w http.ResponseWriter, r *http.Request) {
	var req createProductRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	name, err := CheckLicensingName(req.Name)
	if err == nil {
		err = CheckProductID(req.ID)
	}
	if err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return
	}
	p, err := s.lic.CreateProduct(r.Context(), req.ID, name)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/products/"+p.ID)
	httpx.WriteJSON(w, http.StatusCreated, p)
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) {
	page, ok := pageOf(w, r)
	if !ok {
		return
	}
	ps, next, err := s.lic.ListProducts(r.Context(), page)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, LicensingList("products", ps, next))
}

type createEntitlementRequest struct {
	TenantID     string                       `json:"tenant_id"`
	ProductID    string                       `json:"product_id"`
	Seats        int                          `json:"seats"`
	ExpiresAt    time.Time                    `json:"expires_at"`    // absent: never
	LeaseSeconds int64                        `json:"lease_seconds"` // absent: the default lease
	Features     map[string]licensing.Feature `json:"features"`
}

// CheckNewEntitlement checks ne as POST /api/v1/entitlements does (without
// looking up the tenant and product), naming the fields as the API does.
func CheckNewEntitlement(ne licensing.NewEntitlement, now time.Time) error {
	switch {
	case strings.TrimSpace(ne.TenantID) == "":
		return errors.New("tenant_id is required")
	case strings.TrimSpace(ne.ProductID) == "":
		return errors.New("product_id is required")
	}
	if err := CheckSeats(ne.Seats); err != nil {
		return err
	}
	if err := CheckLease(ne.Lease); err != nil {
		return err
	}
	return CheckExpiry(ne.ExpiresAt, now)
}

func (s *Server) createEntitlement(w http.ResponseWriter, r *http.Request) {
	var req createEntitlementRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	if req.LeaseSeconds < 0 || req.LeaseSeconds > int64(maxLease/time.Second) {
		httpx.WriteErr(w, invalidField("lease_seconds %d: want 1 to %d", req.LeaseSeconds, int64(maxLease/time.Second)))
		return
	}
	ne := licensing.NewEntitlement{
		TenantID: req.TenantID, ProductID: req.ProductID, Seats: req.Seats,
		ExpiresAt: req.ExpiresAt, Lease: time.Duration(req.LeaseSeconds) * time.Second, Features: req.Features,
	}
	if err := CheckNewEntitlement(ne, now()); err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return
	}
	ctx := r.Context()
	if _, err := s.lic.GetTenant(ctx, ne.TenantID); errors.Is(err, licensing.ErrNotFound) {
		httpx.WriteErr(w, invalidField("tenant_id %q: no such tenant", ne.TenantID))
		return
	}
	if _, err := s.lic.GetProduct(ctx, ne.ProductID); errors.Is(err, licensing.ErrNotFound) {
		httpx.WriteErr(w, invalidField("product_id %q: no such product", ne.ProductID))
		return
	}
	ce, err := s.lic.CreateEntitlement(ctx, ne)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/entitlements/"+ce.ID)
	w.Header().Set("Cache-Control", "no-store") // the activation code
	httpx.WriteJSON(w, http.StatusCreated, ce)
}

func (s *Server) listEntitlements(w http.ResponseWriter, r *http.Request) {
	page, ok := pageOf(w, r)
	if !ok {
		return
	}
	es, next, err := s.lic.ListEntitlements(r.Context(), r.URL.Query().Get("tenant_id"), page)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, LicensingList("entitlements", es, next))
}

func (s *Server) getEntitlement(w http.ResponseWriter, r *http.Request) {
	e, err := s.lic.GetEntitlement(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, e)
}

func (s *Server) setEntitlementStatus(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, id := r.Context(), r.PathValue("id")
		set := s.lic.ResumeEntitlement
		if suspend {
			set = s.lic.SuspendEntitlement
		}
		if err := set(ctx, id); err != nil {
			s.writeLicensingError(w, r, err)
			return
		}
		e, err := s.lic.GetEntitlement(ctx, id)
		if err != nil {
			s.writeLicensingError(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, e)
	}
}

// licensingSentinels pairs the licensing service's sentinels with the
// store's, which writeStoreError answers: the store's errors match both,
// the service's own refusals (a bad lease, an unknown webhook cursor)
// only licensing's.
var licensingSentinels = []struct{ domain, store error }{
	{licensing.ErrNotFound, store.ErrNotFound},
	{licensing.ErrConflict, store.ErrConflict},
	{licensing.ErrInvalid, store.ErrInvalid},
}

// writeLicensingError is writeStoreError for the licensing service's
// errors, without the "licensing: …: " prefixes the service puts on the
// store's messages.
func (s *Server) writeLicensingError(w http.ResponseWriter, r *http.Request, err error) {
	for _, p := range licensingSentinels {
		if !errors.Is(err, p.domain) {
			continue
		}
		e := &sentinelMessage{err: err, sentinel: p.store, msg: err.Error()}
		e.msg = safeMessage(e)
		for _, p := range []string{"licensing: ", "create tenant: ", "create product: ", "create entitlement: "} {
			e.msg = strings.TrimPrefix(e.msg, p)
		}
		err = e
		break
	}
	s.writeStoreError(w, r, err)
}

// sentinelMessage is err, also matching the store's sentinel, with a
// cleaned message.
type sentinelMessage struct {
	err, sentinel error
	msg           string
}

func (e *sentinelMessage) Error() string   { return e.msg }
func (e *sentinelMessage) Unwrap() []error { return []error{e.err, e.sentinel} }

// LicensingList is the JSON of a list of the licensing API: {"<items>":
// [...], "next_cursor": "..."}. The CLI prints the same.
func LicensingList[T any](items string, page []T, next string) map[string]any {
	if page == nil {
		page = []T{}
	}
	return map[string]any{items: page, "next_cursor": next}
}

// pageOf reads ?limit= and ?cursor= (opaque: licensing.Page); it answers
// the error itself and returns false when the limit is not a number in
// range.
func pageOf(w http.ResponseWriter, r *http.Request) (licensing.Page, bool) {
	n, ok := limitParam(w, r, licensing.MaxPageLimit)
	if !ok {
		return licensing.Page{}, false
	}
	return licensing.Page{Cursor: r.URL.Query().Get("cursor"), Limit: n}, true
}

// limitParam reads ?limit=, 1 to max; 0 when it is absent (the list's
// default). It answers the error itself and returns false when the limit
// is not a number in range.
func limitParam(w http.ResponseWriter, r *http.Request, max int) (int, bool) {
	n, err := httpx.LimitParam(r, max)
	if err != nil {
		httpx.WriteErr(w, err)
		return 0, false
	}
	return n, true
}
