package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/tokencache"
)

// AdminScope lets a client introspect and revoke other clients' tokens.
const AdminScope = "admin"

// secretLen is the number of random bytes in a client secret.
const secretLen = 32

// hashPrefix names the secret hash scheme in stored hashes: HMAC-SHA256
// keyed by Config.Pepper. legacyHashPrefix is the same keyed by the pepper
// an installation kept in its database before (pepper.go).
const (
	hashPrefix       = "hmac-sha256-sk$"
	legacyHashPrefix = "hmac-sha256$"
)

// ErrInvalidScope: a scope name is malformed (RFC 6749 §3.3).
var ErrInvalidScope = errors.New("invalid scope")

// Server is the authorization server. It is safe for concurrent use.
type Server struct {
	db     Store
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	pepper []byte
	// legacyPepper verifies the hashes made with the pepper the database
	// held before (pepper.go); nil when there is none.
	legacyPepper []byte
	limiter      *httpx.RateLimiter
	// verified remembers tokens that verified (verifycache.go).
	verified tokencache.Cache[verifiedEntry]

	mu         sync.Mutex
	signer     jose.Signer
	signingKID string
	keys       map[string]*ecdsa.PublicKey // by kid, retired keys included
	reloadedAt time.Time
}

// Client is a Management API client, without its secret.
type Client struct {
	ID        string    `json:"client_id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	TenantID  string    `json:"tenant_id,omitempty"` // the tenant it is bound to
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// New returns a server on db, which must be migrated. On the first start
// of a database it makes the signing key and stores it.
func New(ctx context.Context, db Store, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RevocationRecheck == 0 {
		cfg.RevocationRecheck = DefaultRevocationRecheck
	}
	s := &Server{db: db, cfg: cfg, log: cfg.Logger, now: cfg.Now, pepper: cfg.Pepper}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.limiter = httpx.NewRateLimiter(httpx.RateLimiterConfig{Rate: cfg.RateLimit, Burst: cfg.RateBurst, Now: s.now})
	var err error
	if s.legacyPepper, err = s.loadLegacyPepper(ctx); err != nil {
		return nil, err
	}
	if err := s.loadSigningKey(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// loadSigningKey makes the signing key if the database has none, and
// loads every signing key.
func (s *Server) loadSigningKey(ctx context.Context) error {
	priv, material, err := keys.NewP256()
	if err != nil {
		return fmt.Errorf("oauth: signing key: %w", err)
	}
	kid, err := keys.Thumbprint(&priv.PublicKey)
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	k, err := s.db.EnsureOAuthKey(ctx, Key{
		ID: kid, Kind: KeySigning,
		Material: s.sealSigningKey(kid, material),
	})
	if err != nil {
		return fmt.Errorf("oauth: load signing key: %w", err)
	}
	active, err := s.signingKey(ctx, k)
	if err != nil {
		return err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: active, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType(tokenType))
	if err != nil {
		return fmt.Errorf("oauth: signer: %w", err)
	}
	s.mu.Lock()
	s.signer, s.signingKID = signer, k.ID
	s.mu.Unlock()
	return s.reloadKeys(ctx)
}

// reloadKeys reads every signing key, so that tokens signed by another
// process's newer key verify here too.
func (s *Server) reloadKeys(ctx context.Context) error {
	ks, err := s.db.ListOAuthKeys(ctx, KeySigning)
	if err != nil {
		return fmt.Errorf("oauth: load signing keys: %w", err)
	}
	keys := make(map[string]*ecdsa.PublicKey, len(ks))
	for _, k := range ks {
		priv, err := s.signingKey(ctx, k)
		if err != nil {
			return err
		}
		keys[k.ID] = &priv.PublicKey
	}
	s.mu.Lock()
	s.keys, s.reloadedAt = keys, s.now()
	s.mu.Unlock()
	return nil
}

// minReload is how often an unknown kid may trigger a reload of the keys.
const minReload = time.Minute

// publicKey returns the verification key with the kid.
func (s *Server) publicKey(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	s.mu.Lock()
	k, ok := s.keys[kid]
	stale := s.now().Sub(s.reloadedAt) > minReload
	s.mu.Unlock()
	if ok || !stale {
		return k, nil
	}
	if err := s.reloadKeys(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[kid], nil
}

// CreateClient makes a client with the scopes and returns its ID and its
// secret. The secret is not stored and cannot be shown again.
func (s *Server) CreateClient(ctx context.Context, name string, scopes []string) (clientID, secret string, err error) {
	return s.CreateTenantClient(ctx, name, "", scopes)
}

// CreateTenantClient is CreateClient for a client bound to a licensing
// tenant ("" for none): its tokens carry the tenant (TenantClaim), and the
// API lets them act for that tenant only. Such a client never holds
// AdminScope, and holds only Config.TenantScopes when that is set (an
// error wrapping ErrInvalidScope otherwise); an unknown tenant is an
// error wrapping ErrNotFound.
func (s *Server) CreateTenantClient(ctx context.Context, name, tenantID string, scopes []string) (clientID, secret string, err error) {
	c, secret, err := s.newClient(name, scopes)
	if err != nil {
		return "", "", err
	}
	if tenantID != "" {
		for _, sc := range c.Scopes {
			if sc == AdminScope || (s.cfg.TenantScopes != nil && !slices.Contains(s.cfg.TenantScopes, sc)) {
				return "", "", fmt.Errorf("%w: %q: a client bound to a tenant may hold only %s", ErrInvalidScope, sc, tenantScopesText(s.cfg.TenantScopes))
			}
		}
		c.TenantID = tenantID
	}
	if _, err = s.db.CreateOAuthClient(ctx, c); err != nil {
		return "", "", fmt.Errorf("oauth: create client %q: %w", name, err)
	}
	s.log.InfoContext(ctx, "oauth client created", slog.String("client_id", c.ID), slog.String("name", name),
		slog.String("scope", strings.Join(c.Scopes, " ")), slog.String("tenant_id", c.TenantID))
	return c.ID, secret, nil
}

func tenantScopesText(scopes []string) string {
	if scopes == nil {
		return "scopes other than " + AdminScope
	}
	if len(scopes) == 0 {
		return "no scope"
	}
	return strings.Join(scopes, ", ")
}

// CreateFirstClient is CreateClient on a store that never had a client;
// created is false, with nothing made, otherwise. Of processes calling it
// at once on one empty store, exactly one creates its client.
func (s *Server) CreateFirstClient(ctx context.Context, name string, scopes []string) (clientID, secret string, created bool, err error) {
	c, secret, err := s.newClient(name, scopes)
	if err != nil {
		return "", "", false, err
	}
	if _, created, err = s.db.CreateFirstOAuthClient(ctx, c); err != nil || !created {
		if err != nil {
			err = fmt.Errorf("oauth: create first client %q: %w", name, err)
		}
		return "", "", false, err
	}
	s.log.InfoContext(ctx, "oauth client created", slog.String("client_id", c.ID), slog.String("name", name), slog.String("scope", strings.Join(c.Scopes, " ")))
	return c.ID, secret, true, nil
}

// newClient makes a client's ID and secret, and the row the store keeps.
func (s *Server) newClient(name string, scopes []string) (StoredClient, string, error) {
	scopes = slices.Clone(scopes)
	for _, sc := range scopes {
		if !validScopeToken(sc) {
			return StoredClient{}, "", fmt.Errorf("%w: %q", ErrInvalidScope, sc)
		}
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	b := make([]byte, secretLen)
	rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b)
	id := uuid.Must(uuid.NewV7()).String()
	return StoredClient{ID: id, Name: name, SecretHash: s.hashSecret(id, secret), Scopes: scopes}, secret, nil
}

// ListClients returns every client, revoked ones included.
func (s *Server) ListClients(ctx context.Context) ([]Client, error) {
	cs, err := s.db.ListOAuthClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauth: list clients: %w", err)
	}
	out := make([]Client, len(cs))
	for i, c := range cs {
		out[i] = Client{ID: c.ID, Name: c.Name, Scopes: c.Scopes, TenantID: c.TenantID, CreatedAt: c.CreatedAt, RevokedAt: c.RevokedAt}
	}
	return out, nil
}

// GetClient returns the client with the ID, revoked or not; the error
// wraps ErrNotFound for an unknown client.
func (s *Server) GetClient(ctx context.Context, clientID string) (Client, error) {
	c, err := s.db.GetOAuthClient(ctx, clientID)
	if err != nil {
		return Client{}, fmt.Errorf("oauth: get client: %w", err)
	}
	return Client{ID: c.ID, Name: c.Name, Scopes: c.Scopes, TenantID: c.TenantID, CreatedAt: c.CreatedAt, RevokedAt: c.RevokedAt}, nil
}

// RevokeClient revokes the client: it can get no more tokens, and the
// tokens it holds stop verifying. The error wraps ErrNotFound for an
// unknown client.
func (s *Server) RevokeClient(ctx context.Context, clientID string) error {
	if err := s.db.RevokeOAuthClient(ctx, clientID); err != nil {
		return fmt.Errorf("oauth: revoke client: %w", err)
	}
	s.verified.Clear()
	s.log.InfoContext(ctx, "oauth client revoked", slog.String("client_id", clientID))
	return nil
}

// PruneRevokedTokens forgets the revocations of tokens that have expired,
// and returns how many it forgot. Run it now and then.
func (s *Server) PruneRevokedTokens(ctx context.Context) (int64, error) {
	n, err := s.db.PruneOAuthRevokedTokens(ctx, s.now().Add(-s.cfg.Leeway))
	if err != nil {
		return 0, fmt.Errorf("oauth: prune revoked tokens: %w", err)
	}
	return n, nil
}

// hashSecret is what the store keeps of a client's secret. The client ID is
// part of the input so that a hash copied to another row does not verify.
func (s *Server) hashSecret(clientID, secret string) string {
	return hashPrefix + base64.RawURLEncoding.EncodeToString(s.mac(clientID, secret))
}

func (s *Server) mac(clientID, secret string) []byte { return mac(s.pepper, clientID, secret) }

func mac(pepper []byte, clientID, secret string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(clientID))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// authenticate returns the active client with the ID if the secret is
// its secret. The comparison takes the same time for an unknown client.
// A hash made with the legacy pepper is made again with the pepper on
// the client's first success (pepper.go).
func (s *Server) authenticate(ctx context.Context, clientID, secret string) (StoredClient, authFailure, error) {
	got := s.mac(clientID, secret)
	c, err := s.db.GetOAuthClient(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		hmac.Equal(got, make([]byte, len(got)))
		return StoredClient{}, failUnknownClient, nil
	}
	if err != nil {
		return StoredClient{}, 0, err
	}
	stored, legacy := strings.CutPrefix(c.SecretHash, legacyHashPrefix)
	if !legacy {
		var ok bool
		if stored, ok = strings.CutPrefix(c.SecretHash, hashPrefix); !ok {
			return StoredClient{}, 0, fmt.Errorf("oauth: client %s: stored secret hash has an unknown format", c.ID)
		}
	}
	want, derr := base64.RawURLEncoding.DecodeString(stored)
	if derr != nil {
		return StoredClient{}, 0, fmt.Errorf("oauth: client %s: stored secret hash has an unknown format", c.ID)
	}
	if legacy {
		if s.legacyPepper == nil { // retired: only revoked clients kept such hashes
			hmac.Equal(got, make([]byte, len(got)))
			return StoredClient{}, failWrongSecret, nil
		}
		got = mac(s.legacyPepper, clientID, secret)
	}
	if !hmac.Equal(got, want) {
		return StoredClient{}, failWrongSecret, nil
	}
	if c.Revoked() {
		return StoredClient{}, failRevokedClient, nil
	}
	if legacy {
		s.rehash(ctx, c, secret)
	}
	return c, 0, nil
}

type authFailure int

const (
	failUnknownClient authFailure = iota + 1
	failWrongSecret
	failRevokedClient
)

func (f authFailure) String() string {
	switch f {
	case failUnknownClient:
		return "unknown client"
	case failWrongSecret:
		return "wrong secret"
	case failRevokedClient:
		return "revoked client"
	}
	return "ok"
}

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}
