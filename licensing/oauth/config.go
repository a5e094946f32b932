package oauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Issuer is the "iss" of the access tokens: the server's base URL.
	Issuer string
	// Audience is the "aud" of the access tokens: the Management API.
	Audience string
	// TokenTTL is how long an access token lives.
	TokenTTL time.Duration
	// Leeway is the clock skew Verify tolerates on exp and iat.
	Leeway time.Duration
	// Pepper is the key of the secret hashes, at least 32 bytes, kept out
	// of the database: the server derives it from its seal key. Required.
	// Changing it invalidates every client secret. A pepper that an
	// earlier version kept in the database is migrated by New (pepper.go).
	Pepper []byte
	// Scopes are the scopes the API knows. A client with AdminScope may
	// ask for a token with any of them (a narrower token than its own);
	// nil lets it ask for any well-formed scope.
	Scopes []string
	// TenantScopes are the scopes a client bound to a tenant may hold
	// (CreateTenantClient); nil allows any but AdminScope, which such a
	// client never holds.
	TenantScopes []string
	// RateLimit and RateBurst limit the credential-checking endpoints
	// (token, introspection, revocation) per client address.
	RateLimit rate.Limit
	RateBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client those limits count (httpx.ClientIP); none: the peer.
	TrustedProxies []netip.Prefix
	// RevocationRecheck is how long a token that verified is trusted
	// before the store is asked again whether it or its client was
	// revoked: a revocation by another process takes effect within it
	// (one through this server at once). Zero means
	// DefaultRevocationRecheck; at most a minute.
	RevocationRecheck time.Duration
	// Logger receives the server's messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// DefaultConfig returns the default configuration. Issuer should be set to
// the server's public base URL.
func DefaultConfig() Config {
	return Config{
		Issuer:    "vigil",
		Audience:  "vigil-management-api",
		TokenTTL:  10 * time.Minute,
		Leeway:    30 * time.Second,
		RateLimit: rate.Every(time.Second),
		RateBurst: 20,

		RevocationRecheck: DefaultRevocationRecheck,
	}
}

// Limits Validate enforces.
const (
	maxTokenTTL  = 24 * time.Hour
	maxLeeway    = 5 * time.Minute
	minPepperLen = 32
)

// Validate reports what is wrong with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is empty"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is empty"))
	}
	if c.TokenTTL <= 0 || c.TokenTTL > maxTokenTTL {
		errs = append(errs, fmt.Errorf("token TTL %v: must be positive and at most %v", c.TokenTTL, maxTokenTTL))
	}
	if c.Leeway < 0 || c.Leeway > maxLeeway {
		errs = append(errs, fmt.Errorf("leeway %v: must be between 0 and %v", c.Leeway, maxLeeway))
	}
	if c.Pepper == nil {
		errs = append(errs, errors.New("pepper is required: derive it from the seal key"))
	} else if len(c.Pepper) < minPepperLen {
		errs = append(errs, fmt.Errorf("pepper is %d bytes: must be at least %d", len(c.Pepper), minPepperLen))
	}
	if c.RateLimit <= 0 {
		errs = append(errs, fmt.Errorf("rate limit %v: must be positive", c.RateLimit))
	}
	if c.RevocationRecheck < 0 || c.RevocationRecheck > time.Minute {
		errs = append(errs, fmt.Errorf("revocation recheck %v: must be between 0 and 1m", c.RevocationRecheck))
	}
	if c.RateBurst < 1 {
		errs = append(errs, fmt.Errorf("rate burst %d: must be at least 1", c.RateBurst))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("oauth config: %w", err)
	}
	return nil
}
