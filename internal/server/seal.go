package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SealKeySize is the size of Config.SealKey (AES-256).
const SealKeySize = 32

// The HKDF-SHA256 labels of the keys derived from the seal key, one per
// purpose, so that none is kept in the database.
const (
	infoLicensingSecret = "vigil/seal-key/licensing-secret" // #nosec G101 -- an HKDF label, not a secret
	infoOAuthPepper     = "vigil/seal-key/oauth-pepper"     // #nosec G101 -- an HKDF label, not a secret
)

// LicensingSecret is the licensing service's secret (licensing.Config
// Secret) of the installation whose seal key is sealKey.
func LicensingSecret(sealKey []byte) ([]byte, error) {
	return deriveFromSealKey(sealKey, infoLicensingSecret)
}

// OAuthPepper is the key of the OAuth client secret hashes (oauth.Config
// Pepper) of the installation whose seal key is sealKey.
func OAuthPepper(sealKey []byte) ([]byte, error) {
	return deriveFromSealKey(sealKey, infoOAuthPepper)
}

func deriveFromSealKey(sealKey []byte, info string) ([]byte, error) {
	if len(sealKey) != SealKeySize {
		return nil, fmt.Errorf("server: seal key is %d bytes, want %d", len(sealKey), SealKeySize)
	}
	return hkdf.Key(sha256.New, sealKey, nil, info, 32)
}

// sealPrefix marks a sealed secret and the scheme that sealed it.
const sealPrefix = "aesgcm1:"

// sealer seals the webhook secrets the store keeps: verifying an HMAC
// needs the secret itself, so it cannot be hashed, and a copy of the
// database alone must not reveal it.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("server: seal key is %d bytes, want %d", len(key), SealKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal encrypts secret, bound to the project name (a sealed secret copied
// to another project does not open).
func (s *sealer) seal(project, secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	ct := s.aead.Seal(nonce, nonce, []byte(secret), []byte(project))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(ct)
}

func (s *sealer) open(project, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errors.New("server: the stored value is not sealed")
	}
	b, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("server: a sealed value is malformed")
	}
	pt, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(project))
	if err != nil {
		return "", errors.New("server: a sealed value does not open with this seal key (another installation's seal.key?)")
	}
	return string(pt), nil
}
