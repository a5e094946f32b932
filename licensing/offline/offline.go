// Package offline is the wire format and the cryptography of offline
// activation, for machines that never reach the licensing server.
//
// The client makes an HPKE key pair (RFC 9180, crypto/hpke) and seals a
// Request to the tenant's server key (a ServerKey, published by the server
// and copied to the client as a file):
//
//	env, ck, err := offline.NewRequest(sk, offline.Params{Type: offline.Activate, ...}, nil)
//
// The Envelope is carried to the server (POST /api/v1/offline/activate,
// or `vigil license offline-activate`), which opens it (OpenRequest),
// activates, and answers with a License signed with the tenant's Ed25519
// key and sealed to the client's key (SealAnswer). The client opens and
// verifies the answer with its ClientKey, the ServerKey and a State that
// remembers the greatest time seen, so that a clock turned back is
// detected:
//
//	lic, err := offline.Open(answer, ck, sk, st)
//
// Suites: DHKEM(X25519, HKDF-SHA256) by default, or the ML-KEM-768 +
// X25519 hybrid (X-Wing) that the client selects; always HKDF-SHA256 and
// ChaCha20-Poly1305. The HPKE info string binds the protocol version, the
// direction and the suite; the associated data binds the key ID.
package offline

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version of envelopes, keys and licenses.
const Version = 1

// KEM names, as flags and key files spell them.
const (
	KEMX25519         = "x25519"
	KEMMLKEM768X25519 = "mlkem768-x25519"
)

// Request types.
const (
	Activate   = "activate"
	Refresh    = "refresh"
	Deactivate = "deactivate"
)

// License kinds.
const (
	KindLicense      = "license"
	KindDeactivation = "deactivation"
)

// Envelope purposes: what is sealed, and to whom.
const (
	PurposeRequest = "request" // to the server's key
	PurposeAnswer  = "answer"  // to the client's key
)

// Limits and windows.
const (
	// MaxEnvelope bounds an envelope's JSON, as read from a file or a
	// request body.
	MaxEnvelope = 64 << 10
	// maxPlaintext bounds what an envelope opens to.
	maxPlaintext = 32 << 10
	// RequestMaxAge is how old a request may be when the server opens it:
	// the time to carry it from the air-gapped machine to the server.
	RequestMaxAge = 72 * time.Hour
	// RequestMaxSkew is how far in the future a request's time may be
	// (the client's clock running ahead).
	RequestMaxSkew = 15 * time.Minute
	// ClockTolerance is how far behind the greatest time seen the local
	// clock may be before Open reports ErrClockRollback.
	ClockTolerance = 5 * time.Minute
)

// Errors of opening and verifying. Each error returned wraps one of them
// and says what was wrong.
var (
	// ErrMalformed: not an envelope, key or license of this protocol.
	ErrMalformed = errors.New("offline: malformed")
	// ErrTampered: the envelope does not open (altered, or sealed to
	// another key) or the signature does not verify.
	ErrTampered = errors.New("offline: tampered or wrong key")
	// ErrMismatch: the answer is genuine but not the answer to this
	// client's request (request ID, tenant, product, seat, fingerprint).
	ErrMismatch = errors.New("offline: answer does not match the request")
	// ErrLeaseExpired: the license's lease ran out.
	ErrLeaseExpired = errors.New("offline: lease expired")
	// ErrClockRollback: the local clock is behind a time already seen.
	ErrClockRollback = errors.New("offline: clock turned back")
	// ErrStale: a request older than RequestMaxAge or too far ahead.
	ErrStale = errors.New("offline: request is stale")
)

// The fixed parts of every suite.
var (
	ecdhX25519 = ecdh.X25519()
	kdf        = hpke.HKDFSHA256()
	aead       = hpke.ChaCha20Poly1305()
)

// KEM returns the HPKE KEM that name selects: KEMX25519 ("" too) or
// KEMMLKEM768X25519. The store names its offline key kinds the same.
func KEM(name string) (hpke.KEM, error) {
	switch name {
	case KEMX25519, "":
		return hpke.DHKEM(ecdhX25519), nil
	case KEMMLKEM768X25519:
		return hpke.MLKEM768X25519(), nil
	}
	return nil, fmt.Errorf("%w: KEM %q: want %q or %q", ErrMalformed, name, KEMX25519, KEMMLKEM768X25519)
}

// KEMName returns the name of a supported HPKE KEM ID.
func KEMName(id uint16) (string, error) {
	for _, n := range []string{KEMX25519, KEMMLKEM768X25519} {
		if k, _ := KEM(n); k.ID() == id {
			return n, nil
		}
	}
	return "", fmt.Errorf("%w: KEM id 0x%04x is not supported", ErrMalformed, id)
}

// KEMID returns the HPKE KEM ID of a KEM name.
func KEMID(name string) (uint16, error) {
	k, err := KEM(name)
	if err != nil {
		return 0, err
	}
	return k.ID(), nil
}

// Envelope is an HPKE-sealed message with the suite and key it was sealed
// to. Its JSON is what files and HTTP bodies carry (byte fields base64).
type Envelope struct {
	Version    int    `json:"version"`
	Purpose    string `json:"purpose"`
	KEM        uint16 `json:"kem_id"`
	KDF        uint16 `json:"kdf_id"`
	AEAD       uint16 `json:"aead_id"`
	KeyID      string `json:"key_id"`
	Enc        []byte `json:"enc"`
	Ciphertext []byte `json:"ciphertext"`
}

// info binds the protocol version, the purpose and the suite.
func info(purpose string, kemID uint16) []byte {
	return fmt.Appendf(nil, "vigil-offline-v%d %s kem=0x%04x kdf=0x%04x aead=0x%04x", Version, purpose, kemID, kdf.ID(), aead.ID())
}

// aad binds the key ID, so that a changed key ID fails to open.
func aad(purpose, keyID string) []byte {
	return fmt.Appendf(nil, "vigil-offline-v%d\x00%s\x00%s", Version, purpose, keyID)
}

func seal(pk hpke.PublicKey, purpose, keyID string, plain []byte) (*Envelope, error) {
	kemID := pk.KEM().ID()
	enc, s, err := hpke.NewSender(pk, kdf, aead, info(purpose, kemID))
	if err != nil {
		return nil, fmt.Errorf("offline: seal: %w", err)
	}
	ct, err := s.Seal(aad(purpose, keyID), plain)
	if err != nil {
		return nil, fmt.Errorf("offline: seal: %w", err)
	}
	return &Envelope{Version: Version, Purpose: purpose, KEM: kemID, KDF: kdf.ID(), AEAD: aead.ID(), KeyID: keyID, Enc: enc, Ciphertext: ct}, nil
}

// check reports what is wrong with the envelope's header.
func (e *Envelope) check(purpose string) error {
	switch {
	case e.Version != Version:
		return fmt.Errorf("%w: envelope version %d: want %d", ErrMalformed, e.Version, Version)
	case e.Purpose != purpose:
		return fmt.Errorf("%w: envelope is an offline %s, want an offline %s", ErrMalformed, e.Purpose, purpose)
	case e.KDF != kdf.ID() || e.AEAD != aead.ID():
		return fmt.Errorf("%w: envelope suite kdf 0x%04x aead 0x%04x: want HKDF-SHA256 (0x%04x) and ChaCha20-Poly1305 (0x%04x)", ErrMalformed, e.KDF, e.AEAD, kdf.ID(), aead.ID())
	case e.KeyID == "" || len(e.KeyID) > 128:
		return fmt.Errorf("%w: envelope key_id is empty or longer than 128 bytes", ErrMalformed)
	case len(e.Enc) == 0 || len(e.Ciphertext) == 0:
		return fmt.Errorf("%w: envelope has no enc or no ciphertext", ErrMalformed)
	}
	_, err := KEMName(e.KEM)
	return err
}

func open(e *Envelope, priv hpke.PrivateKey, purpose, keyID string) ([]byte, error) {
	if err := e.check(purpose); err != nil {
		return nil, err
	}
	if e.KEM != priv.KEM().ID() {
		return nil, fmt.Errorf("%w: envelope KEM 0x%04x is not the key's (0x%04x)", ErrTampered, e.KEM, priv.KEM().ID())
	}
	if e.KeyID != keyID {
		return nil, fmt.Errorf("%w: envelope is sealed to key %q, not to %q", ErrTampered, e.KeyID, keyID)
	}
	r, err := hpke.NewRecipient(e.Enc, priv, kdf, aead, info(purpose, e.KEM))
	if err != nil {
		return nil, fmt.Errorf("%w: the %s's encapsulated key is invalid", ErrTampered, purpose)
	}
	plain, err := r.Open(aad(purpose, keyID), e.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s does not open with key %s (altered, or sealed to another key)", ErrTampered, purpose, keyID)
	}
	if len(plain) > maxPlaintext {
		return nil, fmt.Errorf("%w: the %s is larger than %d bytes", ErrMalformed, purpose, maxPlaintext)
	}
	return plain, nil
}

// ParseEnvelope decodes an envelope's JSON (at most MaxEnvelope bytes,
// no unknown fields) and checks its header for the purpose.
func ParseEnvelope(b []byte, purpose string) (*Envelope, error) {
	var e Envelope
	if err := decodeStrict(b, MaxEnvelope, &e, "envelope"); err != nil {
		return nil, err
	}
	if err := e.check(purpose); err != nil {
		return nil, err
	}
	return &e, nil
}

// Marshal returns the envelope's JSON, indented, ending in a newline.
func (e *Envelope) Marshal() []byte {
	b, _ := json.MarshalIndent(e, "", "  ")
	return append(b, '\n')
}

// KeyInfo is one public key of a ServerKey.
type KeyInfo struct {
	KEM       string `json:"kem,omitempty"` // KEM keys: KEMX25519 or KEMMLKEM768X25519
	KEMID     uint16 `json:"kem_id,omitempty"`
	Alg       string `json:"alg,omitempty"` // the signing key: "Ed25519"
	KeyID     string `json:"key_id"`
	PublicKey []byte `json:"public_key"`
}

// ServerKey is a tenant's offline public key set: the KEM keys requests
// are sealed to and the key that signs licenses. It is the JSON of GET
// /api/v1/tenants/{id}/offline-key and of `vigil license server-key`.
type ServerKey struct {
	Version  int       `json:"version"`
	TenantID string    `json:"tenant_id"`
	KDFID    uint16    `json:"kdf_id"`
	AEADID   uint16    `json:"aead_id"`
	KEMs     []KeyInfo `json:"kems"`
	Signing  KeyInfo   `json:"signing_key"`
}

// SuiteIDs returns the KDF and AEAD IDs every suite uses.
func SuiteIDs() (kdfID, aeadID uint16) { return kdf.ID(), aead.ID() }

// ParseServerKey decodes and checks a ServerKey's JSON.
func ParseServerKey(b []byte) (*ServerKey, error) {
	var sk ServerKey
	if err := decodeStrict(b, MaxEnvelope, &sk, "server key"); err != nil {
		return nil, err
	}
	switch {
	case sk.Version != Version:
		return nil, fmt.Errorf("%w: server key version %d: want %d", ErrMalformed, sk.Version, Version)
	case sk.TenantID == "":
		return nil, fmt.Errorf("%w: server key has no tenant_id", ErrMalformed)
	case sk.KDFID != kdf.ID() || sk.AEADID != aead.ID():
		return nil, fmt.Errorf("%w: server key suite kdf 0x%04x aead 0x%04x is not supported", ErrMalformed, sk.KDFID, sk.AEADID)
	case sk.Signing.Alg != "Ed25519" || len(sk.Signing.PublicKey) != ed25519.PublicKeySize || sk.Signing.KeyID == "":
		return nil, fmt.Errorf("%w: server key has no Ed25519 signing key", ErrMalformed)
	case len(sk.KEMs) == 0:
		return nil, fmt.Errorf("%w: server key has no KEM keys", ErrMalformed)
	}
	for _, k := range sk.KEMs {
		if _, err := sk.kemKey(k.KEM); err != nil {
			return nil, err
		}
	}
	return &sk, nil
}

// kemKey returns the server's public key for the KEM.
func (sk *ServerKey) kemKey(name string) (hpke.PublicKey, error) {
	kem, err := KEM(name)
	if err != nil {
		return nil, err
	}
	for _, k := range sk.KEMs {
		if k.KEM == name || (name == "" && k.KEM == KEMX25519) {
			if k.KEMID != kem.ID() || k.KeyID == "" {
				return nil, fmt.Errorf("%w: server key %q: kem_id 0x%04x is not %s's, or no key_id", ErrMalformed, k.KeyID, k.KEMID, k.KEM)
			}
			pk, err := kem.NewPublicKey(k.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("%w: server key %q: %s public key: %v", ErrMalformed, k.KeyID, k.KEM, err)
			}
			return pk, nil
		}
	}
	return nil, fmt.Errorf("%w: the server key file has no %s key", ErrMalformed, name)
}

func (sk *ServerKey) kemKeyID(name string) string {
	for _, k := range sk.KEMs {
		if k.KEM == name {
			return k.KeyID
		}
	}
	return ""
}

// Feature is a feature a license grants, as licensing.Feature.
type Feature struct {
	Kind  string `json:"kind"`
	Limit int    `json:"limit,omitempty"`
}

// License is what the server signs: the state of an offline activation
// (KindLicense) or the receipt of its deactivation (KindDeactivation).
type License struct {
	Version              int                `json:"version"`
	Kind                 string             `json:"kind"`
	ActivationID         string             `json:"activation_id"`
	TenantID             string             `json:"tenant_id"`
	ProductID            string             `json:"product_id"`
	EntitlementID        string             `json:"entitlement_id"`
	SeatID               string             `json:"seat_id"`
	SeatName             string             `json:"seat_name,omitempty"`
	Fingerprint          string             `json:"fingerprint,omitempty"`
	Features             map[string]Feature `json:"features"`
	EntitlementExpiresAt time.Time          `json:"entitlement_expires_at,omitzero"`
	IssuedAt             time.Time          `json:"issued_at"`
	LeaseExpiresAt       time.Time          `json:"lease_expires_at,omitzero"`
	DeactivatedAt        time.Time          `json:"deactivated_at,omitzero"`
	// LastSeen is the server's time when it answered: a client clock
	// behind it was turned back.
	LastSeen  time.Time `json:"last_seen"`
	RequestID string    `json:"request_id"`
}

// signedLicense is the plaintext of an answer: the license's JSON as
// signed, the Ed25519 signature and the signing key's ID.
type signedLicense struct {
	License   json.RawMessage `json:"license"`
	Signature []byte          `json:"signature"`
	KeyID     string          `json:"key_id"`
}

// signedBytes are the bytes the signature covers: a domain prefix and the
// license's JSON exactly as carried.
func signedBytes(doc []byte) []byte {
	return append(fmt.Appendf(nil, "vigil-offline-v%d license\n", Version), doc...)
}

// proof is the client's proof of possession of its private key, which
// refresh and deactivation requests present: only the holder of the key
// that activated can compute it.
func proof(priv []byte) string {
	m := hmac.New(sha256.New, priv)
	m.Write([]byte("vigil-offline-v1/activation-proof"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// KeyHash is the SHA-256 of a public key, base64url: how the server
// remembers which client key activated.
func KeyHash(pub []byte) string {
	s := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// newRequestID returns 128 random bits, base64url.
func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeStrict decodes one JSON value of at most max bytes, refusing
// unknown fields and trailing data.
func decodeStrict(b []byte, max int, v any, what string) error {
	if len(b) > max {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformed, what, max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s: data after the JSON value", ErrMalformed, what)
	}
	return nil
}
