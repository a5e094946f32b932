package licensing

import (
	"context"
	"fmt"
	"time"
)

// EntitledProducts returns the products the tenant holds an active
// entitlement to at the time: one whose status is active and which has
// not expired, of a tenant that is not suspended (a suspended tenant
// holds none). Errors wrap ErrNotFound for an unknown tenant.
func (s *Service) EntitledProducts(ctx context.Context, tenantID string) (map[string]bool, error) {
	t, err := s.db.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if t.Status != StatusActive {
		return out, nil
	}
	now := s.now()
	p := Page{Limit: MaxPageLimit}
	for {
		es, next, err := s.db.ListEntitlements(ctx, tenantID, p)
		if err != nil {
			return nil, fmt.Errorf("licensing: entitlements of tenant %s: %w", tenantID, err)
		}
		for _, e := range es {
			if active(e, now) {
				out[e.ProductID] = true
			}
		}
		if next == "" {
			return out, nil
		}
		p.Cursor = next
	}
}

// active reports whether the entitlement grants anything at the time.
func active(e StoredEntitlement, now time.Time) bool {
	return e.Status == StatusActive && (e.ExpiresAt.IsZero() || now.Before(e.ExpiresAt))
}
