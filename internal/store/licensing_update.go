package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RenameTenant sets the tenant's name and returns the tenant. ErrInvalid
// for an empty name, ErrNotFound for an unknown tenant.
func (d *DB) RenameTenant(ctx context.Context, id, name string) (Tenant, error) {
	if err := d.rename(ctx, "licensing_tenants", "tenant", id, name); err != nil {
		return Tenant{}, err
	}
	return d.GetTenant(ctx, id)
}

// RenameProduct sets the product's name and returns the product. Its ID,
// which applications embed, never changes.
func (d *DB) RenameProduct(ctx context.Context, id, name string) (Product, error) {
	if err := d.rename(ctx, "licensing_products", "product", id, name); err != nil {
		return Product{}, err
	}
	return d.GetProduct(ctx, id)
}

func (d *DB) rename(ctx context.Context, table, what, id, name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalid, what)
	}
	res, err := d.exec(ctx, "UPDATE "+table+" SET name = ? WHERE id = ?", name, id)
	if err != nil {
		return fmt.Errorf("store: rename %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: rename %s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
	}
	return nil
}

// EntitlementChange is what UpdateEntitlement changes: nil fields stay.
// A zero *ExpiresAt removes the expiry. Features is the whole JSON object.
type EntitlementChange struct {
	Seats     *int
	ExpiresAt *time.Time
	Lease     *time.Duration
	Features  *string
}

// UpdateEntitlement applies the change in one statement and returns the
// entitlement. Fewer seats than are active frees none: the seats in use
// keep their leases and no new one is granted until enough are freed.
func (d *DB) UpdateEntitlement(ctx context.Context, id string, c EntitlementChange) (Entitlement, error) {
	var (
		sets []string
		args []any
	)
	if c.Seats != nil {
		if *c.Seats < 1 {
			return Entitlement{}, fmt.Errorf("%w: an entitlement needs at least one seat", ErrInvalid)
		}
		sets, args = append(sets, "seats = ?"), append(args, *c.Seats)
	}
	if c.ExpiresAt != nil {
		sets, args = append(sets, "expires_at = ?"), append(args, d.timeArg(*c.ExpiresAt))
	}
	if c.Lease != nil {
		if *c.Lease < time.Second {
			return Entitlement{}, fmt.Errorf("%w: lease %v: must be at least 1s", ErrInvalid, *c.Lease)
		}
		sets, args = append(sets, "lease_seconds = ?"), append(args, int64(*c.Lease/time.Second))
	}
	if c.Features != nil {
		sets, args = append(sets, "features = ?"), append(args, *c.Features)
	}
	if len(sets) > 0 {
		res, err := d.exec(ctx, "UPDATE licensing_entitlements SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, id)...)
		if err != nil {
			return Entitlement{}, fmt.Errorf("store: update entitlement: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Entitlement{}, fmt.Errorf("store: update entitlement: %w", err)
		} else if n == 0 {
			return Entitlement{}, fmt.Errorf("entitlement %q: %w", id, ErrNotFound)
		}
	}
	return d.GetEntitlement(ctx, id)
}
