package licensing

import (
	"context"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/vigil-sec/vigil/internal/keys"
)

// The keys of the service all come from Config.Secret, which the server
// derives from its seal key: nothing in the database opens or verifies
// anything the service keeps. Each purpose has its own HKDF-SHA256 label.
const (
	infoCodeHash     = "vigil/licensing/hash/activation-code"
	infoNonceHash    = "vigil/licensing/hash/nonce"
	infoIdemHash     = "vigil/licensing/hash/idempotency-key"
	infoProofHash    = "vigil/licensing/hash/offline-proof"
	infoSealAnswers  = "vigil/licensing/seal/idempotency-answers"
	infoSealOffline  = "vigil/licensing/seal/offline-keys"
	infoSealWebhooks = "vigil/licensing/seal/webhook-keys"
	infoSealLegacy   = "vigil/licensing/seal/legacy-secret"
	infoSealSigning  = "vigil/licensing/seal/signing-keys"
)

// sealedSecretPrefix marks a legacy secret row whose material is sealed
// under Config.Secret (infoSealLegacy); a row without it holds the legacy
// secret in the clear and has not been migrated yet.
const sealedSecretPrefix = "sealed1:"

// keyring is what the service keys its hashes and seals with.
type keyring struct {
	code, nonce, idem, proof []byte
	answers, offline, hooks  sealer
	signing                  sealer // the ES256 token signing keys (PEM)
	// legacyAnswers opens the answers stored before the installation's
	// secret left the database; nil on installations that never had one.
	legacyAnswers *sealer
}

func hkdfKey(secret []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		panic("licensing: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	return k
}

// newKeyring derives every key from the secret.
func newKeyring(secret []byte) keyring {
	return keyring{
		code:    hkdfKey(secret, infoCodeHash),
		nonce:   hkdfKey(secret, infoNonceHash),
		idem:    hkdfKey(secret, infoIdemHash),
		proof:   hkdfKey(secret, infoProofHash),
		answers: newSealer(hkdfKey(secret, infoSealAnswers)),
		offline: newSealer(hkdfKey(secret, infoSealOffline)),
		hooks:   newSealer(hkdfKey(secret, infoSealWebhooks)),
		signing: newSealer(hkdfKey(secret, infoSealSigning)),
	}
}

// legacyKeyring is the keys of a secret that lived in the database (the
// service before the secret came from the seal key). Its hash keys stay
// in use: hashes of activation codes, nonces and proofs cannot be made
// again without what they hash.
func legacyKeyring(secret []byte) keyring {
	offlineKey := derive(secret, "offline")
	return keyring{
		code:    derive(secret, "activation-code"),
		nonce:   derive(secret, "nonce"),
		idem:    derive(secret, "idempotency-key"),
		proof:   derive(offlineKey, "proof"),
		answers: newSealer(derive(secret, "idempotency-seal")),
		offline: newSealer(derive(offlineKey, "key-seal")),
		hooks:   newSealer(derive(secret, "webhooks")),
	}
}

// resealHook, when set (tests only), runs before each value is sealed
// again; an error stops the migration there, as a crash would.
var resealHook atomic.Pointer[func(Store, SealedValue) error]

// loadKeyring returns the service's keys. On an installation whose
// database holds the legacy secret in the clear it first migrates, in one
// transaction: every sealed offline key, webhook key and webhook secret is
// sealed again under keys from the secret, and the legacy secret is
// replaced by itself sealed under the secret. A crash rolls it all back,
// and the next start does it again.
func loadKeyring(ctx context.Context, db Store, secret []byte, log *slog.Logger) (keyring, error) {
	kr := newKeyring(secret)
	wrap := newSealer(hkdfKey(secret, infoSealLegacy))
	for range 3 { // a racing process may migrate first: read again
		k, err := db.ActiveLicensingKey(ctx, KeySecret)
		if errors.Is(err, ErrNotFound) {
			return kr, nil // an installation made with the secret outside the database
		}
		if err != nil {
			return keyring{}, fmt.Errorf("licensing: load secret: %w", err)
		}
		aad := "licensing-secret\x00" + k.ID
		if sealed, ok := strings.CutPrefix(k.Material, sealedSecretPrefix); ok {
			legacy, err := wrap.open(sealed, aad)
			if err != nil {
				return keyring{}, fmt.Errorf("licensing: the stored legacy secret %s does not open with this secret: another installation's seal key?", k.ID)
			}
			return withLegacy(kr, legacy), nil
		}
		legacy, err := base64.RawURLEncoding.DecodeString(k.Material)
		if err != nil || len(legacy) < minSecretLen {
			return keyring{}, fmt.Errorf("licensing: stored secret %s is malformed", k.ID)
		}
		old := legacyKeyring(legacy)
		migrated, err := db.ResealLicensing(ctx, k, sealedSecretPrefix+wrap.seal(legacy, aad), func(v SealedValue) (string, error) {
			if hook := resealHook.Load(); hook != nil {
				if err := (*hook)(db, v); err != nil {
					return "", err
				}
			}
			return reseal(old, kr, v)
		})
		if err != nil {
			return keyring{}, fmt.Errorf("licensing: move the secret out of the database: %w", err)
		}
		if migrated {
			log.InfoContext(ctx, "licensing: the secret stored in the database is now sealed under the seal key; offline and webhook keys sealed again")
			return withLegacy(kr, legacy), nil
		}
	}
	return keyring{}, errors.New("licensing: load secret: it keeps changing under this process")
}

// withLegacy keeps the legacy secret's hash keys, and its answer sealer to
// open the answers stored before (they expire after IdempotencyTTL).
func withLegacy(kr keyring, legacy []byte) keyring {
	old := legacyKeyring(legacy)
	kr.code, kr.nonce, kr.idem, kr.proof = old.code, old.nonce, old.idem, old.proof
	kr.legacyAnswers = &old.answers
	return kr
}

// sealedKeyPrefix marks a signing key row whose PEM is sealed under
// Config.Secret (infoSealSigning); a row without it is a PEM in the clear
// that an earlier version stored, sealed in place on first use.
const sealedKeyPrefix = "sealed1:"

func signingKeyAAD(id string) string { return "signing-key\x00" + id }

// sealSigningKey is what the store keeps of a new signing key.
func (s *Service) sealSigningKey(id, pem string) string {
	return sealedKeyPrefix + s.kr.signing.seal([]byte(pem), signingKeyAAD(id))
}

// signingKey opens a stored signing key. One stored in the clear is
// sealed in place (a racing process may do it first: that is the same).
func (s *Service) signingKey(ctx context.Context, k Key) (*ecdsa.PrivateKey, error) {
	pem := k.Material
	if sealed, ok := strings.CutPrefix(k.Material, sealedKeyPrefix); ok {
		b, err := s.kr.signing.open(sealed, signingKeyAAD(k.ID))
		if err != nil {
			return nil, fmt.Errorf("licensing: signing key %s does not open with this secret: another installation's seal key?", k.ID)
		}
		pem = string(b)
	}
	priv, err := keys.ParseP256(pem)
	if err != nil {
		return nil, fmt.Errorf("licensing: signing key %s: %w", k.ID, err)
	}
	if pem == k.Material {
		if _, err := s.db.ReplaceLicensingKeyMaterial(ctx, k.ID, k.Material, s.sealSigningKey(k.ID, pem)); err != nil {
			return nil, fmt.Errorf("licensing: seal signing key %s: %w", k.ID, err)
		}
	}
	return priv, nil
}

// reseal opens v with the old keys and seals it with the new ones, bound
// to the same row.
func reseal(old, kr keyring, v SealedValue) (string, error) {
	var from, to sealer
	var aad string
	switch v.Kind {
	case SealedOfflineKey:
		from, to, aad = old.offline, kr.offline, offlineKeyAAD(v.OfflineKey)
	case SealedWebhookKey:
		from, to, aad = old.hooks, kr.hooks, tenantKeyAAD(v.TenantID)
	case SealedWebhookSecret:
		from, to, aad = old.hooks, kr.hooks, secretAAD(v.WebhookID)
	default:
		return "", fmt.Errorf("licensing: unknown sealed value %q", v.Kind)
	}
	plain, err := from.open(v.Sealed, aad)
	if err != nil {
		return "", fmt.Errorf("licensing: %s of tenant %s: %w with the stored secret", v.Kind, v.TenantID, err)
	}
	return to.seal(plain, aad), nil
}
