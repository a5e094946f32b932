package licensing

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
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/tokencache"
)

// Config configures a Service. Start from DefaultConfig.
type Config struct {
	// Issuer and Audience are the "iss" and "aud" of access tokens.
	Issuer   string
	Audience string
	// DefaultLease is the lease of entitlements created without one.
	DefaultLease time.Duration
	// Leeway is the clock skew tolerated on token times.
	Leeway time.Duration
	// IdempotencyTTL is how long a stored answer can be replayed.
	IdempotencyTTL time.Duration
	// Secret is the root of every key of the service (at least 32
	// bytes): the keys of the hashes of activation codes, nonces and
	// idempotency keys, and those sealing stored answers, offline private
	// keys and webhook keys (keys.go). It must not be kept in the
	// database: the server derives it from its seal key. Required.
	// Changing it invalidates every activation code and sealed value.
	//
	// An installation made before the secret left the database is
	// migrated by New: see loadKeyring.
	Secret []byte
	// Webhooks configures the webhooks for licensing events (events.go);
	// zero fields mean defaults.
	Webhooks WebhookConfig
	// Logger receives the service's messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Issuer:         "vigil",
		Audience:       "vigil-licensing-api",
		DefaultLease:   24 * time.Hour,
		Leeway:         30 * time.Second,
		IdempotencyTTL: 24 * time.Hour,
	}
}

const minSecretLen = 32

// Validate reports what is wrong with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" || c.Audience == "" {
		errs = append(errs, errors.New("issuer and audience must be set"))
	}
	if c.DefaultLease < time.Second {
		errs = append(errs, fmt.Errorf("default lease %v: must be at least 1s", c.DefaultLease))
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, fmt.Errorf("leeway %v: must be between 0 and 5m", c.Leeway))
	}
	if c.IdempotencyTTL <= 0 {
		errs = append(errs, fmt.Errorf("idempotency TTL %v: must be positive", c.IdempotencyTTL))
	}
	if c.Secret == nil {
		errs = append(errs, errors.New("secret is required: derive it from the seal key"))
	} else if len(c.Secret) < minSecretLen {
		errs = append(errs, fmt.Errorf("secret is %d bytes: must be at least %d", len(c.Secret), minSecretLen))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("licensing config: %w", err)
	}
	return nil
}

// Service is the licensing platform: the model and the online Licensing
// API's operations. It is safe for concurrent use.
type Service struct {
	db  Store
	cfg Config
	log *slog.Logger
	now func() time.Time

	kr keyring // keys.go: hash keys and sealers

	hooks hookState // events.go: webhooks for licensing events

	signer jose.Signer
	keys   map[string]*ecdsa.PublicKey // by kid
	// tokens remembers the claims of the access tokens this process
	// signed or verified, so that the next call with one skips the
	// signature check (an ECDSA verification is most of a refresh's CPU).
	// Only what the signature protects is cached: expiry, the tenant and
	// the token's jti are checked on every call. The signing keys are
	// loaded once, at New; code that retires a key while the service runs
	// must also Clear it.
	tokens tokencache.Cache[tokenClaims]
}

// New returns a service on db, a migrated database (internal/store's DB
// implements Store). On the first start of a database it makes the
// signing key and stores it.
func New(ctx context.Context, db Store, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{db: db, cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.kr, err = loadKeyring(ctx, db, cfg.Secret, s.log); err != nil {
		return nil, err
	}
	s.hooks = newHookState(s.kr.hooks, cfg.Webhooks)
	if err := s.loadSigningKeys(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// derive is how the keys of a legacy secret were derived (keys.go).
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("vigil-licensing/" + purpose))
	return m.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// keyedHash is HMAC-SHA256(key, s) in base64url.
func keyedHash(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// equalHash compares two stored hashes in constant time.
func equalHash(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

func (s *Service) loadSigningKeys(ctx context.Context) error {
	_, material, err := keys.NewP256()
	if err != nil {
		return fmt.Errorf("licensing: signing key: %w", err)
	}
	id := "lic-" + uuid.NewString()
	k, err := s.db.EnsureLicensingKey(ctx, Key{
		ID: id, Kind: KeySigning,
		Material: s.sealSigningKey(id, material),
	})
	if err != nil {
		return fmt.Errorf("licensing: load signing key: %w", err)
	}
	active, err := s.signingKey(ctx, k)
	if err != nil {
		return err
	}
	s.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: active, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType(tokenType))
	if err != nil {
		return fmt.Errorf("licensing: signer: %w", err)
	}
	ks, err := s.db.ListLicensingKeys(ctx, KeySigning)
	if err != nil {
		return fmt.Errorf("licensing: load signing keys: %w", err)
	}
	s.keys = make(map[string]*ecdsa.PublicKey, len(ks))
	for _, k := range ks {
		priv, err := s.signingKey(ctx, k)
		if err != nil {
			return err
		}
		s.keys[k.ID] = &priv.PublicKey
	}
	return nil
}

// sealAnswer encrypts a stored answer, bound to its activation and key.
func (s *Service) sealAnswer(plain []byte, activationID, keyHash string) string {
	return s.kr.answers.seal(plain, activationID+"\x00"+keyHash)
}

func (s *Service) openAnswer(sealed, activationID, keyHash string) ([]byte, error) {
	aad := activationID + "\x00" + keyHash
	plain, err := s.kr.answers.open(sealed, aad)
	if errors.Is(err, errSealOpen) && s.kr.legacyAnswers != nil {
		plain, err = s.kr.legacyAnswers.open(sealed, aad) // stored before the migration
	}
	switch {
	case errors.Is(err, errSealMalformed):
		return nil, errors.New("licensing: stored answer is malformed")
	case err != nil:
		return nil, errors.New("licensing: stored answer does not open")
	}
	return plain, nil
}
