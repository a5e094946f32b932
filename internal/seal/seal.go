// Package seal encrypts what Vigil stores but must not keep in the clear
// (webhook secrets, forge tokens, licensing keys and answers, signing
// keys): AES-256-GCM, a random nonce in front of the ciphertext, the
// whole encoded as text. The associated data binds a sealed value to what
// it belongs to (a row, a project), so a value copied elsewhere does not
// open. One Sealer serves every caller; each keeps its own key, derived
// from the seal key kept outside the database, and its own associated
// data.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the size of a Sealer's key (AES-256).
const KeySize = 32

// Why Open fails; callers say what the value was.
var (
	ErrMalformed = errors.New("malformed")
	ErrOpen      = errors.New("does not open") // another key, an altered value, other associated data
)

// Sealer seals and opens values under one key. It is safe for concurrent
// use.
type Sealer struct {
	aead cipher.AEAD
	enc  *base64.Encoding
}

// New makes a Sealer with a KeySize-byte key, writing sealed values in
// enc (nil means base64.RawURLEncoding).
func New(key []byte, enc *base64.Encoding) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if enc == nil {
		enc = base64.RawURLEncoding
	}
	return &Sealer{aead: aead, enc: enc}, nil
}

// Derive makes a Sealer whose key is derived from secret with
// HKDF-SHA256 for info (one label per purpose), writing base64url.
func Derive(secret []byte, info string) (*Sealer, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, info, KeySize)
	if err != nil {
		return nil, fmt.Errorf("seal: derive %q: %w", info, err)
	}
	return New(key, nil)
}

// Seal encrypts plain, bound to aad.
func (s *Sealer) Seal(plain, aad []byte) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.enc.EncodeToString(s.aead.Seal(nonce, nonce, plain, aad))
}

// Open returns the plain value of sealed, or ErrMalformed (not a sealed
// value) or ErrOpen (another key, an altered value, other aad).
func (s *Sealer) Open(sealed string, aad []byte) ([]byte, error) {
	b, err := s.enc.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < n {
		return nil, ErrMalformed
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
