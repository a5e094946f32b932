package licensing

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
)

// sealer encrypts what the service stores but must not keep in the clear
// (stored answers, offline private keys, webhook keys and secrets):
// AES-256-GCM under a key derived from the licensing secret, the random
// nonce in front, base64url. The associated data binds a sealed value to
// what it belongs to, so it cannot be moved to another row.
type sealer struct{ aead cipher.AEAD }

// newSealer makes a sealer from a 32-byte key (derive's output).
func newSealer(key []byte) sealer {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("licensing: seal key: " + err.Error()) // derive gives 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("licensing: seal: " + err.Error())
	}
	return sealer{aead: aead}
}

func (s sealer) seal(plain []byte, aad string) string {
	nonce := randomBytes(s.aead.NonceSize())
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(aad)))
}

// Why open fails; callers say what the value was.
var (
	errSealMalformed = errors.New("malformed")
	errSealOpen      = errors.New("does not open") // another secret, an altered row, other associated data
)

// open returns the plain value, or errSealMalformed or errSealOpen.
func (s sealer) open(sealed, aad string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	n := s.aead.NonceSize()
	if err != nil || len(b) < n {
		return nil, errSealMalformed
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(aad))
	if err != nil {
		return nil, errSealOpen
	}
	return plain, nil
}
