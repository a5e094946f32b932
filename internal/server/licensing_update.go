package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing"
)

// renameRequest is the body of PATCH /api/v1/tenants/{id}: only the name
// changes (a product's PATCH is updateProduct, reportschedules.go).
type renameRequest struct {
	Name string `json:"name"`
}

func (s *Server) renameTenant(w http.ResponseWriter, r *http.Request) {
	name, ok := decodeRename(w, r)
	if !ok {
		return
	}
	t, err := s.lic.RenameTenant(r.Context(), r.PathValue("id"), name)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

func decodeRename(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req renameRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return "", false
	}
	name, err := CheckLicensingName(req.Name)
	if err != nil {
		httpx.WriteErr(w, invalidField("%v", err))
		return "", false
	}
	return name, true
}

// updateEntitlementRequest is the body of PATCH /api/v1/entitlements/{id}:
// absent members stay as they are; "expires_at": null removes the expiry.
type updateEntitlementRequest struct {
	Seats        *int                          `json:"seats"`
	ExpiresAt    json.RawMessage               `json:"expires_at"`
	LeaseSeconds *int64                        `json:"lease_seconds"`
	Features     *map[string]licensing.Feature `json:"features"`
}

func (s *Server) updateEntitlement(w http.ResponseWriter, r *http.Request) {
	var req updateEntitlementRequest
	if err := httpx.DecodeJSON(w, r, &req, 0); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	var c licensing.EntitlementChange
	if req.Seats != nil {
		if err := CheckSeats(*req.Seats); err != nil {
			httpx.WriteErr(w, invalidField("%v", err))
			return
		}
		c.Seats = req.Seats
	}
	if req.ExpiresAt != nil {
		var t time.Time
		if string(req.ExpiresAt) != "null" {
			if err := json.Unmarshal(req.ExpiresAt, &t); err != nil {
				httpx.WriteErr(w, invalidField("expires_at %s: want an RFC 3339 time or null (never)", truncate(string(req.ExpiresAt), 64)))
				return
			}
			if err := CheckExpiry(t, now()); err != nil {
				httpx.WriteErr(w, invalidField("%v", err))
				return
			}
		}
		c.ExpiresAt = &t
	}
	if req.LeaseSeconds != nil {
		if *req.LeaseSeconds < 1 || *req.LeaseSeconds > int64(maxLease/time.Second) {
			httpx.WriteErr(w, invalidField("lease_seconds %d: want 1 to %d", *req.LeaseSeconds, int64(maxLease/time.Second)))
			return
		}
		d := time.Duration(*req.LeaseSeconds) * time.Second
		c.Lease = &d
	}
	if req.Features != nil {
		c.Features = *req.Features
		if c.Features == nil {
			c.Features = map[string]licensing.Feature{}
		}
	}
	e, err := s.lic.UpdateEntitlement(r.Context(), r.PathValue("id"), c)
	if err != nil {
		s.writeLicensingError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, e)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
