package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/licensing"
)

// RenameTenant sets the tenant's name and returns the tenant. ErrInvalid
// for an empty name, ErrNotFound for an unknown tenant.
func (d *DB) RenameTenant(ctx context.Context, id, name string) (licensing.Tenant, error) {
	if err := d.rename(ctx, "licensing_tenants", "tenant", id, name); err != nil {
		return licensing.Tenant{}, err
	}
	return d.GetTenant(ctx, id)
}

// RenameProduct sets the product's name and returns the product. Its ID,
// which applications embed, never changes.
func (d *DB) RenameProduct(ctx context.Context, id, name string) (licensing.Product, error) {
	if err := d.rename(ctx, "licensing_products", "product", id, name); err != nil {
		return licensing.Product{}, err
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

// UpdateEntitlement applies the change in one statement and returns the
// entitlement. Fewer seats than are active frees none: the seats in use
// keep their leases and no new one is granted until enough are freed.
func (d *DB) UpdateEntitlement(ctx context.Context, id string, c licensing.StoredEntitlementChange) (licensing.StoredEntitlement, error) {
	var (
		sets []string
		args []any
	)
	if c.Seats != nil {
		if *c.Seats < 1 {
			return licensing.StoredEntitlement{}, fmt.Errorf("%w: an entitlement needs at least one seat", ErrInvalid)
		}
		sets, args = append(sets, "seats = ?"), append(args, *c.Seats)
	}
	if c.ExpiresAt != nil {
		sets, args = append(sets, "expires_at = ?"), append(args, d.timeArg(*c.ExpiresAt))
	}
	if c.Lease != nil {
		if *c.Lease < time.Second {
			return licensing.StoredEntitlement{}, fmt.Errorf("%w: lease %v: must be at least 1s", ErrInvalid, *c.Lease)
		}
		sets, args = append(sets, "lease_seconds = ?"), append(args, int64(*c.Lease/time.Second))
	}
	if c.Features != nil {
		sets, args = append(sets, "features = ?"), append(args, *c.Features)
	}
	if len(sets) > 0 {
		res, err := d.exec(ctx, "UPDATE licensing_entitlements SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, id)...)
		if err != nil {
			return licensing.StoredEntitlement{}, fmt.Errorf("store: update entitlement: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return licensing.StoredEntitlement{}, fmt.Errorf("store: update entitlement: %w", err)
		} else if n == 0 {
			return licensing.StoredEntitlement{}, fmt.Errorf("entitlement %q: %w", id, ErrNotFound)
		}
	}
	return d.GetEntitlement(ctx, id)
}
