package webhooks

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a Standard Webhooks request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Prefixes of serialised secrets and keys, and of signatures.
const (
	SecretPrefix     = "whsec_"
	PublicKeyPrefix  = "whpk_"
	PrivateKeyPrefix = "whsk_"
	SchemeHMAC       = "v1"
	SchemeEd25519    = "v1a"
)

// Tolerance is how far a webhook-timestamp may be from the receiver's
// clock, either way, for Verify to accept it (replay protection).
const Tolerance = 5 * time.Minute

// Secret sizes the spec allows for v1 secrets: 24 to 64 bytes.
const (
	minSecretLen = 24
	maxSecretLen = 64
	// SecretLen is the size of secrets NewSecret makes.
	SecretLen = 32
)

// maxSignatures bounds the signatures Verify looks at in one header.
const maxSignatures = 10

// Errors of Verify. ErrSignature is the only one a bad signature gives, so
// that nothing tells a forger how close it came.
var (
	ErrMissingHeaders = errors.New("webhooks: webhook-id, webhook-timestamp or webhook-signature is missing")
	ErrTimestamp      = errors.New("webhooks: webhook-timestamp is not a unix time within 5 minutes of now")
	ErrSignature      = errors.New("webhooks: no signature matches")
)

// Secret is a v1 (HMAC-SHA256) signing secret.
type Secret []byte

// NewSecret returns a random secret of SecretLen bytes.
func NewSecret() Secret {
	b := make([]byte, SecretLen)
	rand.Read(b)
	return b
}

// String is the secret as the spec serialises it: "whsec_" + base64.
func (s Secret) String() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s) }

// ParseSecret reads a secret serialised as "whsec_" + base64 (the prefix
// may be omitted, as the spec's libraries allow).
func ParseSecret(s string) (Secret, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, errors.New("webhooks: secret is not base64 after whsec_")
	}
	if len(b) < minSecretLen || len(b) > maxSecretLen {
		return nil, fmt.Errorf("webhooks: secret is %d bytes, want %d to %d", len(b), minSecretLen, maxSecretLen)
	}
	return b, nil
}

// NewKey returns a new Ed25519 key pair for v1a signatures.
func NewKey() (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("webhooks: crypto/rand failed: " + err.Error()) // crypto/rand does not fail
	}
	return pub, priv
}

// FormatPublicKey serialises a public key: "whpk_" + base64 of its 32 bytes.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// FormatPrivateKey serialises a private key: "whsk_" + base64 of its
// 32-byte seed, as the spec's libraries read it.
func FormatPrivateKey(priv ed25519.PrivateKey) string {
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed())
}

// ParsePublicKey reads a "whpk_" public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, PublicKeyPrefix)
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("webhooks: public key: want %s followed by base64 of %d bytes", PublicKeyPrefix, ed25519.PublicKeySize)
	}
	return b, nil
}

// ParsePrivateKey reads a "whsk_" private key (its seed).
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b64, ok := strings.CutPrefix(s, PrivateKeyPrefix)
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("webhooks: private key: want %s followed by base64 of a %d-byte seed", PrivateKeyPrefix, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// Keys are what a message is signed or verified with: an Ed25519 key
// (v1a) and, optionally, an HMAC secret (v1). To sign, set Private (and
// Secret for a v1 signature too); to verify, set Public and/or Secret.
type Keys struct {
	Private ed25519.PrivateKey
	Public  ed25519.PublicKey
	Secret  Secret
}

// signedContent is what both schemes sign: "{msg_id}.{timestamp}.{payload}".
func signedContent(msgID string, ts int64, payload []byte) []byte {
	b := make([]byte, 0, len(msgID)+len(payload)+22)
	b = append(b, msgID...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	return append(b, payload...)
}

func hmacSign(secret Secret, content []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(content)
	return m.Sum(nil)
}

// checkMsgID refuses IDs the spec forbids: empty, or with a '.', which
// would make the signed content ambiguous.
func checkMsgID(msgID string) error {
	if msgID == "" || strings.ContainsAny(msgID, ". \t\r\n") {
		return fmt.Errorf("webhooks: message id %q: must be non-empty without '.' or spaces", msgID)
	}
	return nil
}

// Sign returns the webhook-signature value for the message: a "v1a,"
// signature with keys.Private, then a "v1," one if keys.Secret is set,
// space-separated. At least one of them must be set.
func Sign(msgID string, ts time.Time, payload []byte, keys Keys) (string, error) {
	if err := checkMsgID(msgID); err != nil {
		return "", err
	}
	content := signedContent(msgID, ts.Unix(), payload)
	var sigs []string
	if keys.Private != nil {
		sigs = append(sigs, SchemeEd25519+","+base64.StdEncoding.EncodeToString(ed25519.Sign(keys.Private, content)))
	}
	if keys.Secret != nil {
		sigs = append(sigs, SchemeHMAC+","+base64.StdEncoding.EncodeToString(hmacSign(keys.Secret, content)))
	}
	if len(sigs) == 0 {
		return "", errors.New("webhooks: sign: no key")
	}
	return strings.Join(sigs, " "), nil
}

// Headers returns the three headers of a signed message, timestamped ts.
func Headers(msgID string, ts time.Time, payload []byte, keys Keys) (http.Header, error) {
	sig, err := Sign(msgID, ts, payload, keys)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h, nil
}

// Verify checks a received message: the headers are present, the
// timestamp is within Tolerance of now, and one of the signatures is a
// valid v1a signature by keys.Public or v1 signature with keys.Secret
// (compared in constant time). Signatures of other schemes are ignored.
func Verify(h http.Header, payload []byte, keys Keys, now time.Time) error {
	msgID, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if msgID == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Unix() - ts; d > int64(Tolerance/time.Second) || d < -int64(Tolerance/time.Second) {
		return ErrTimestamp
	}
	if checkMsgID(msgID) != nil {
		return ErrSignature
	}
	content := signedContent(msgID, ts, payload)
	var mac []byte
	if keys.Secret != nil {
		mac = hmacSign(keys.Secret, content)
	}
	for i, sig := range strings.Fields(sigs) {
		if i == maxSignatures {
			break
		}
		scheme, b64, ok := strings.Cut(sig, ",")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		switch {
		case scheme == SchemeEd25519 && len(keys.Public) == ed25519.PublicKeySize:
			if len(raw) == ed25519.SignatureSize && ed25519.Verify(keys.Public, content, raw) {
				return nil
			}
		case scheme == SchemeHMAC && mac != nil:
			if hmac.Equal(raw, mac) {
				return nil
			}
		}
	}
	return ErrSignature
}
