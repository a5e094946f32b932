package server

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

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
