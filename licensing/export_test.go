package licensing

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// What the tests of package licensing_test reach inside the service for:
// they need a real database, and internal/store imports this package, so
// they cannot be internal tests.

// SealedSecretPrefix marks a legacy secret row sealed under Config.Secret.
const SealedSecretPrefix = sealedSecretPrefix

// What sealed values are bound to.
var (
	OfflineKeyAAD = offlineKeyAAD
	TenantKeyAAD  = tenantKeyAAD
	SecretAAD     = secretAAD
)

// NewLegacyService is the service as it was before the secret left the
// database: every key derived from the legacy secret (what New did then,
// which legacyKeyring keeps), tokens signed with the key signing (kid).
// The caller stores the secret and the signing key as that version did.
func NewLegacyService(db Store, legacy []byte, kid string, signing *ecdsa.PrivateKey, log *slog.Logger) (*Service, error) {
	s := &Service{db: db, cfg: DefaultConfig(), log: log, now: time.Now, kr: legacyKeyring(legacy)}
	s.hooks = newHookState(s.kr.hooks, s.cfg.Webhooks)
	var err error
	s.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: signing, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(tokenType))
	if err != nil {
		return nil, err
	}
	s.keys = map[string]*ecdsa.PublicKey{kid: &signing.PublicKey}
	return s, nil
}

// SetResealHook sets resealHook; nil removes it.
func SetResealHook(hook func(Store, SealedValue) error) {
	if hook == nil {
		resealHook.Store(nil)
		return
	}
	resealHook.Store(&hook)
}

// OpenOfflineKey opens the sealed private key of an offline key.
func OpenOfflineKey(s *Service, k OfflineKey) ([]byte, error) { return s.openOfflineKey(k) }

// TenantWebhookKey returns the tenant's webhook key pair.
func TenantWebhookKey(ctx context.Context, s *Service, tenantID string) (ed25519.PrivateKey, string, error) {
	return s.tenantKey(ctx, tenantID)
}

// OpenWebhookSecret opens the endpoint's sealed v1 HMAC secret.
func OpenWebhookSecret(s *Service, w StoredWebhook) ([]byte, error) {
	return s.hooks.openHook(w.Secret, secretAAD(w.ID))
}

// Sealers of a Keyring, by what they seal.
const (
	SealerAnswers = "answers"
	SealerOffline = "offline"
	SealerHooks   = "hooks"
)

// Keyring is the keys a secret derives, as the current version
// (NewKeyring) or the legacy one (LegacyKeyring) derived them.
type Keyring struct{ kr keyring }

// NewKeyring derives a keyring from the secret as New does.
func NewKeyring(secret []byte) Keyring { return Keyring{newKeyring(secret)} }

// LegacyKeyring derives a keyring from a legacy secret.
func LegacyKeyring(secret []byte) Keyring { return Keyring{legacyKeyring(secret)} }

// CodeHash is what the keyring makes of an activation code.
func (k Keyring) CodeHash(code string) string { return CodeHashWithKey(k.kr.code, code) }

// Open opens a value sealed by the keyring's sealer (SealerAnswers,
// SealerOffline, SealerHooks).
func (k Keyring) Open(which, sealed, aad string) error {
	s := map[string]sealer{SealerAnswers: k.kr.answers, SealerOffline: k.kr.offline, SealerHooks: k.kr.hooks}[which]
	if s.s == nil {
		panic("licensing: no sealer " + which)
	}
	_, err := s.open(sealed, aad)
	return err
}

// CodeHashWithKey is the hash of an activation code under key.
func CodeHashWithKey(key []byte, code string) string {
	norm, _ := NormalizeCode(code)
	return keyedHash(key, norm)
}

// OpenWithKey opens a sealed value with key (32 bytes) as the sealing key.
func OpenWithKey(key []byte, sealed, aad string) error {
	_, err := newSealer(key).open(sealed, aad)
	return err
}
