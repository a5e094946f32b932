package licensing

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Tenant is a customer of the licensing platform.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Product is a licensed application. Its ID is what the application
// embeds and sends as N-ProductId.
type Product struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Feature kinds.
const (
	FeatureBoolean = "boolean"
	FeatureCounted = "counted"
)

// Feature is a feature an entitlement grants: boolean (present means on)
// or counted (at most Limit checked out at once across its seats).
type Feature struct {
	Kind  string `json:"kind"`
	Limit int    `json:"limit,omitempty"`
}

// Entitlement grants a tenant seats of a product.
type Entitlement struct {
	ID           string             `json:"id"`
	TenantID     string             `json:"tenant_id"`
	ProductID    string             `json:"product_id"`
	Seats        int                `json:"seats"`
	ExpiresAt    time.Time          `json:"expires_at,omitzero"`
	LeaseSeconds int64              `json:"lease_seconds"`
	Features     map[string]Feature `json:"features"`
	Status       string             `json:"status"`
	CreatedAt    time.Time          `json:"created_at"`
}

// NewEntitlement is the input of CreateEntitlement.
type NewEntitlement struct {
	TenantID  string
	ProductID string
	Seats     int
	ExpiresAt time.Time     // zero: never
	Lease     time.Duration // zero: Config.DefaultLease
	Features  map[string]Feature
}

// CreatedEntitlement is a new entitlement and its activation code, which
// is not stored and cannot be shown again.
type CreatedEntitlement struct {
	Entitlement
	ActivationCode string `json:"activation_code"`
}

// CreateTenant makes an active tenant.
func (s *Service) CreateTenant(ctx context.Context, name string) (Tenant, error) {
	t, err := s.db.CreateTenant(ctx, Tenant{Name: name})
	if err != nil {
		return Tenant{}, fmt.Errorf("licensing: create tenant: %w", err)
	}
	return t, nil
}

// ListTenants returns one page of the tenants, oldest first, and the
// cursor of the next page ("" on the last). Errors wrap ErrInvalid
// for a bad cursor or limit.
func (s *Service) ListTenants(ctx context.Context, p Page) ([]Tenant, string, error) {
	ts, next, err := s.db.ListTenants(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("licensing: %w", err)
	}
	return ts, next, nil
}

// GetTenant returns the tenant; errors wrap ErrNotFound for an
// unknown one.
func (s *Service) GetTenant(ctx context.Context, id string) (Tenant, error) {
	return s.db.GetTenant(ctx, id)
}

// SuspendTenant suspends the tenant: none of its entitlements activates or
// refreshes until it is resumed.
func (s *Service) SuspendTenant(ctx context.Context, id string) error {
	return s.db.SetTenantStatus(ctx, id, StatusSuspended)
}

// ResumeTenant makes a suspended tenant active again.
func (s *Service) ResumeTenant(ctx context.Context, id string) error {
	return s.db.SetTenantStatus(ctx, id, StatusActive)
}

// CreateProduct makes a product. id may be "" for a generated one.
func (s *Service) CreateProduct(ctx context.Context, id, name string) (Product, error) {
	p, err := s.db.CreateProduct(ctx, Product{ID: id, Name: name})
	if err != nil {
		return Product{}, fmt.Errorf("licensing: create product: %w", err)
	}
	return p, nil
}

// GetProduct returns the product; errors wrap ErrNotFound for an
// unknown one.
func (s *Service) GetProduct(ctx context.Context, id string) (Product, error) {
	return s.db.GetProduct(ctx, id)
}

// ListProducts returns one page of the products, oldest first, and the
// cursor of the next page ("" on the last).
func (s *Service) ListProducts(ctx context.Context, p Page) ([]Product, string, error) {
	ps, next, err := s.db.ListProducts(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("licensing: %w", err)
	}
	return ps, next, nil
}

// CreateEntitlement makes an active entitlement and its activation code.
// Errors wrap ErrInvalid for bad input and ErrNotFound for an
// unknown tenant or product.
func (s *Service) CreateEntitlement(ctx context.Context, ne NewEntitlement) (CreatedEntitlement, error) {
	if ne.Lease == 0 {
		ne.Lease = s.cfg.DefaultLease
	}
	if ne.Lease < time.Second || ne.Lease%time.Second != 0 {
		return CreatedEntitlement{}, fmt.Errorf("licensing: %w: lease %v: must be whole seconds, at least 1s", ErrInvalid, ne.Lease)
	}
	features, err := encodeFeatures(ne.Features)
	if err != nil {
		return CreatedEntitlement{}, err
	}
	code := NewActivationCode()
	e, err := s.db.CreateEntitlement(ctx, StoredEntitlement{
		TenantID: ne.TenantID, ProductID: ne.ProductID, Seats: ne.Seats, ExpiresAt: ne.ExpiresAt,
		Lease: ne.Lease, Features: string(features), CodeHash: s.codeHash(code),
	})
	if err != nil {
		return CreatedEntitlement{}, fmt.Errorf("licensing: create entitlement: %w", err)
	}
	out, err := entitlementFrom(e)
	if err != nil {
		return CreatedEntitlement{}, err
	}
	return CreatedEntitlement{Entitlement: out, ActivationCode: code}, nil
}

// encodeFeatures checks the features and encodes them for the store.
func encodeFeatures(fs map[string]Feature) ([]byte, error) {
	for k, f := range fs {
		if k == "" || len(k) > 64 || strings.ContainsAny(k, "/ \t\r\n?#") {
			return nil, fmt.Errorf("licensing: %w: feature key %q", ErrInvalid, k)
		}
		switch {
		case f.Kind == FeatureBoolean && f.Limit == 0:
		case f.Kind == FeatureCounted && f.Limit > 0:
		default:
			return nil, fmt.Errorf("licensing: %w: feature %q: kind must be %q, or %q with a positive limit", ErrInvalid, k, FeatureBoolean, FeatureCounted)
		}
	}
	if fs == nil {
		fs = map[string]Feature{}
	}
	b, err := json.Marshal(fs)
	if err != nil {
		return nil, fmt.Errorf("licensing: encode features: %w", err)
	}
	return b, nil
}

// EntitlementChange is the input of UpdateEntitlement: nil fields stay as
// they are; a zero *ExpiresAt removes the expiry; Features, when not nil,
// replaces every feature.
type EntitlementChange struct {
	Seats     *int
	ExpiresAt *time.Time
	Lease     *time.Duration
	Features  map[string]Feature
}

// UpdateEntitlement changes an entitlement's terms. Its activation code,
// tenant and product never change. Fewer seats than are in use frees
// none: the active seats keep their leases, and no new seat is granted
// until the count is under the new limit.
func (s *Service) UpdateEntitlement(ctx context.Context, id string, c EntitlementChange) (Entitlement, error) {
	sc := StoredEntitlementChange{Seats: c.Seats, ExpiresAt: c.ExpiresAt, Lease: c.Lease}
	if c.Lease != nil && (*c.Lease < time.Second || *c.Lease%time.Second != 0) {
		return Entitlement{}, fmt.Errorf("licensing: %w: lease %v: must be whole seconds, at least 1s", ErrInvalid, *c.Lease)
	}
	if c.Features != nil {
		b, err := encodeFeatures(c.Features)
		if err != nil {
			return Entitlement{}, err
		}
		f := string(b)
		sc.Features = &f
	}
	e, err := s.db.UpdateEntitlement(ctx, id, sc)
	if err != nil {
		return Entitlement{}, fmt.Errorf("licensing: %w", err)
	}
	return entitlementFrom(e)
}

// RenameTenant sets a tenant's name.
func (s *Service) RenameTenant(ctx context.Context, id, name string) (Tenant, error) {
	t, err := s.db.RenameTenant(ctx, id, name)
	if err != nil {
		return Tenant{}, fmt.Errorf("licensing: %w", err)
	}
	return t, nil
}

// RenameProduct sets a product's name; its ID never changes.
func (s *Service) RenameProduct(ctx context.Context, id, name string) (Product, error) {
	p, err := s.db.RenameProduct(ctx, id, name)
	if err != nil {
		return Product{}, fmt.Errorf("licensing: %w", err)
	}
	return p, nil
}

// ListEntitlements returns one page of the tenant's entitlements (of
// every tenant for ""), oldest first, and the cursor of the next page.
func (s *Service) ListEntitlements(ctx context.Context, tenantID string, p Page) ([]Entitlement, string, error) {
	es, next, err := s.db.ListEntitlements(ctx, tenantID, p)
	if err != nil {
		return nil, "", fmt.Errorf("licensing: %w", err)
	}
	out := make([]Entitlement, len(es))
	for i, e := range es {
		if out[i], err = entitlementFrom(e); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// GetEntitlement returns the entitlement; errors wrap ErrNotFound
// for an unknown one.
func (s *Service) GetEntitlement(ctx context.Context, id string) (Entitlement, error) {
	e, err := s.db.GetEntitlement(ctx, id)
	if err != nil {
		return Entitlement{}, err
	}
	return entitlementFrom(e)
}

// SuspendEntitlement suspends the entitlement: it neither activates nor
// refreshes until resumed.
func (s *Service) SuspendEntitlement(ctx context.Context, id string) error {
	return s.db.SetEntitlementStatus(ctx, id, StatusSuspended)
}

// ResumeEntitlement makes a suspended entitlement active again.
func (s *Service) ResumeEntitlement(ctx context.Context, id string) error {
	return s.db.SetEntitlementStatus(ctx, id, StatusActive)
}

func entitlementFrom(e StoredEntitlement) (Entitlement, error) {
	out := Entitlement{
		ID: e.ID, TenantID: e.TenantID, ProductID: e.ProductID, Seats: e.Seats, ExpiresAt: e.ExpiresAt,
		LeaseSeconds: int64(e.Lease / time.Second), Status: e.Status, CreatedAt: e.CreatedAt,
	}
	if err := json.Unmarshal([]byte(e.Features), &out.Features); err != nil {
		return Entitlement{}, fmt.Errorf("licensing: entitlement %s: stored features: %w", e.ID, err)
	}
	return out, nil
}

// codeAlphabet has 32 symbols (no 0, O, 1, I), so each is 5 random bits.
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// codeLen symbols of 5 bits: 80 bits.
const codeLen = 16

// NewActivationCode returns a random activation code, XXXX-XXXX-XXXX-XXXX
// (80 bits from crypto/rand).
func NewActivationCode() string {
	b := make([]byte, codeLen)
	rand.Read(b)
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[c&31]) // 256 is a multiple of 32: uniform
	}
	return sb.String()
}

// NormalizeCode upper-cases the code and drops dashes and spaces. ok is
// false when the result cannot be a code.
func NormalizeCode(code string) (norm string, ok bool) {
	var sb strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(codeAlphabet, r):
			sb.WriteRune(r)
		default:
			return "", false
		}
	}
	return sb.String(), sb.Len() == codeLen
}

// codeHash is what the store keeps of an activation code.
func (s *Service) codeHash(code string) string {
	norm, _ := NormalizeCode(code)
	return keyedHash(s.kr.code, norm)
}
