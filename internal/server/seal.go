package server

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-sec/vigil/internal/seal"
)

// SealKeySize is the size of Config.SealKey (AES-256).
const SealKeySize = seal.KeySize

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
type sealer struct{ s *seal.Sealer }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("server: seal key is %d bytes, want %d", len(key), SealKeySize)
	}
	s, err := seal.New(key, base64.RawStdEncoding)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return &sealer{s: s}, nil
}

// seal encrypts secret, bound to the project name (a sealed secret copied
// to another project does not open).
func (s *sealer) seal(project, secret string) string {
	return sealPrefix + s.s.Seal([]byte(secret), []byte(project))
}

func (s *sealer) open(project, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errors.New("server: the stored value is not sealed")
	}
	pt, err := s.s.Open(b64, []byte(project))
	if errors.Is(err, seal.ErrMalformed) {
		return "", errors.New("server: a sealed value is malformed")
	}
	if err != nil {
		return "", errors.New("server: a sealed value does not open with this seal key (another installation's seal.key?)")
	}
	return string(pt), nil
}
