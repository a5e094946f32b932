package reports

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/seal"
)

// Report-signing keys are ECDSA P-256 keys that Vigil makes itself, the
// first time one is needed. The private half is stored sealed
// (internal/seal) under a key derived from the installation's seal key,
// which is kept outside the database, and bound to the key's ID: a copy
// of the database alone cannot sign a report. One key is current and
// signs; Rotate makes a new current key and retires the old one, whose
// public half is kept, so that reports it signed keep verifying, and
// whose private half is erased.

// infoSealSigning is the HKDF-SHA256 label of the key that seals the
// report-signing keys, derived from the installation's seal key.
const infoSealSigning = "vigil/reports/seal/signing-keys" // #nosec G101 -- an HKDF label, not a secret

// Package reports cannot import reports/attest (which imports it): the
// key ring deals in crypto/ecdsa keys, and callers make an attest.Signer
// (attest.NewSigner) and attest.PublicKeys (attest.NewPublicKey) of them.
// A key's ID is the same RFC 7638 thumbprint (internal/keys.Thumbprint).

// ErrKeyDoesNotOpen is a stored signing key that the seal key given to
// NewKeyRing does not open: another installation's seal key, or an
// altered row.
var ErrKeyDoesNotOpen = errors.New("report-signing key does not open with this seal key")

// StoredKey is a report-signing key as the store keeps it.
type StoredKey struct {
	// ID is the key's RFC 7638 thumbprint.
	ID string
	// PublicPEM is the public key, PKIX PEM.
	PublicPEM string
	// SealedPrivate is the private key (PKCS#8 PEM) sealed under the
	// key ring's sealer and bound to ID; empty once the key is retired.
	SealedPrivate string
	CreatedAt     time.Time
	// RetiredAt is when a newer key replaced it; zero for the current key.
	RetiredAt time.Time
}

// KeyStore is what a KeyRing needs of the store.
type KeyStore interface {
	// EnsureReportKey returns the current report-signing key, storing k
	// as that key first if there is none. Of several processes racing to
	// store the first key, one wins and all get its key.
	EnsureReportKey(ctx context.Context, k StoredKey) (StoredKey, error)
	// RotateReportKey makes k the current key in one transaction: the
	// current key, if any, is retired and its sealed private key erased.
	RotateReportKey(ctx context.Context, k StoredKey) error
	// ListReportKeys returns every report-signing key, the current one
	// and the retired ones, newest first.
	ListReportKeys(ctx context.Context) ([]StoredKey, error)
}

// KeyInfo describes a report-signing key, without its private half.
type KeyInfo struct {
	ID        string     `json:"kid"`
	Current   bool       `json:"current"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// KeyRing keeps the installation's report-signing keys. It is safe for
// concurrent use, also by several processes on one store: each call reads
// the store, so a rotation by another process is seen at once.
type KeyRing struct {
	db     KeyStore
	sealer *seal.Sealer

	mu     sync.Mutex
	signer *ecdsa.PrivateKey // the last current key opened
	id     string            // its ID
}

// NewKeyRing keeps report-signing keys in db, sealed under a key derived
// from the installation's seal key (seal.KeySize bytes).
func NewKeyRing(db KeyStore, sealKey []byte) (*KeyRing, error) {
	if db == nil {
		return nil, errors.New("reports: a key ring needs a store")
	}
	if len(sealKey) != seal.KeySize {
		return nil, fmt.Errorf("reports: seal key is %d bytes, want %d", len(sealKey), seal.KeySize)
	}
	s, err := seal.Derive(sealKey, infoSealSigning)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	return &KeyRing{db: db, sealer: s}, nil
}

func signingKeyAAD(id string) []byte { return []byte("report-signing-key\x00" + id) }

// SigningKey returns the current signing key, making the first key if
// there is none. attest.NewSigner signs with it.
func (r *KeyRing) SigningKey(ctx context.Context) (*ecdsa.PrivateKey, error) {
	k, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.signer != nil && r.id == k.ID {
		return r.signer, nil
	}
	priv, err := r.open(k)
	if err != nil {
		return nil, err
	}
	r.signer, r.id = priv, k.ID
	return priv, nil
}

// Rotate makes a new current signing key and returns it described. The
// keys it replaces keep verifying what they signed.
func (r *KeyRing) Rotate(ctx context.Context) (KeyInfo, error) {
	k, priv, err := r.generate()
	if err != nil {
		return KeyInfo{}, err
	}
	if err := r.db.RotateReportKey(ctx, k); err != nil {
		return KeyInfo{}, fmt.Errorf("reports: rotate the signing key: %w", err)
	}
	r.mu.Lock()
	r.signer, r.id = priv, k.ID
	r.mu.Unlock()
	return KeyInfo{ID: k.ID, Current: true, CreatedAt: k.CreatedAt}, nil
}

// PublicKeys returns the public half of every key, current first, then
// the retired ones newest first. It makes the first key if there is none,
// so that the keys can be published before anything is signed.
func (r *KeyRing) PublicKeys(ctx context.Context) ([]*ecdsa.PublicKey, error) {
	ks, err := r.db.ListReportKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("reports: list signing keys: %w", err)
	}
	if len(ks) == 0 {
		k, err := r.current(ctx)
		if err != nil {
			return nil, err
		}
		ks = []StoredKey{k}
	}
	out := make([]*ecdsa.PublicKey, 0, len(ks))
	for _, k := range ks {
		pub, err := publicKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	return out, nil
}

// Keys describes every key, current first, then the retired ones newest
// first; it makes none.
func (r *KeyRing) Keys(ctx context.Context) ([]KeyInfo, error) {
	ks, err := r.db.ListReportKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("reports: list signing keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(ks))
	for _, k := range ks {
		info := KeyInfo{ID: k.ID, Current: k.RetiredAt.IsZero(), CreatedAt: k.CreatedAt}
		if !k.RetiredAt.IsZero() {
			t := k.RetiredAt
			info.RetiredAt = &t
		}
		out = append(out, info)
	}
	return out, nil
}

// current returns the stored current key, storing a new one first when
// there is none.
func (r *KeyRing) current(ctx context.Context) (StoredKey, error) {
	k, _, err := r.generate()
	if err != nil {
		return StoredKey{}, err
	}
	got, err := r.db.EnsureReportKey(ctx, k)
	if err != nil {
		return StoredKey{}, fmt.Errorf("reports: the signing key: %w", err)
	}
	return got, nil
}

// generate makes a new key as the store keeps it (its private half
// sealed, bound to its ID), and the key itself.
func (r *KeyRing) generate() (StoredKey, *ecdsa.PrivateKey, error) {
	priv, privPEM, err := keys.NewP256()
	if err != nil {
		return StoredKey{}, nil, fmt.Errorf("reports: %w", err)
	}
	id, err := keys.Thumbprint(&priv.PublicKey)
	if err != nil {
		return StoredKey{}, nil, fmt.Errorf("reports: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return StoredKey{}, nil, fmt.Errorf("reports: encode a signing key: %w", err)
	}
	return StoredKey{
		ID:            id,
		PublicPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		SealedPrivate: r.sealer.Seal([]byte(privPEM), signingKeyAAD(id)),
		CreatedAt:     time.Now().UTC().Truncate(time.Microsecond),
	}, priv, nil
}

// open unseals a stored key and checks that it is the key its ID names.
func (r *KeyRing) open(k StoredKey) (*ecdsa.PrivateKey, error) {
	if k.SealedPrivate == "" {
		return nil, fmt.Errorf("reports: signing key %s has no private key: it is retired", k.ID)
	}
	plain, err := r.sealer.Open(k.SealedPrivate, signingKeyAAD(k.ID))
	if errors.Is(err, seal.ErrMalformed) {
		return nil, fmt.Errorf("reports: signing key %s: the sealed key is malformed", k.ID)
	} else if err != nil {
		return nil, fmt.Errorf("reports: %w: key %s (another installation's seal key, or an altered row?)", ErrKeyDoesNotOpen, k.ID)
	}
	priv, err := keys.ParseP256(string(plain))
	if err != nil {
		return nil, fmt.Errorf("reports: signing key %s: %w", k.ID, err)
	}
	if id, err := keys.Thumbprint(&priv.PublicKey); err != nil || id != k.ID {
		return nil, fmt.Errorf("reports: signing key %s opens to another key", k.ID)
	}
	return priv, nil
}

// publicKey reads a stored key's public half and checks its ID.
func publicKey(k StoredKey) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode([]byte(k.PublicPEM))
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("reports: signing key %s: the stored public key is not PEM", k.ID)
	}
	key, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reports: signing key %s: %w", k.ID, err)
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("reports: signing key %s: the stored public key is not ECDSA P-256", k.ID)
	}
	if id, err := keys.Thumbprint(pub); err != nil || id != k.ID {
		return nil, fmt.Errorf("reports: signing key %s: the stored public key is another key", k.ID)
	}
	return pub, nil
}
