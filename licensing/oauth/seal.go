package oauth

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/seal"
)

// The ES256 signing keys are stored sealed (AES-256-GCM) under a key
// derived from Config.Pepper, bound to their kid: a copy of the database
// alone cannot sign tokens. A key an earlier version stored in the clear
// (PEM) is sealed in place when it is first read.

// infoSealSigning is the HKDF label of the key sealing signing keys.
const infoSealSigning = "vigil/oauth/seal/signing-keys"

// sealedKeyPrefix marks a sealed signing key.
const sealedKeyPrefix = "sealed1:"

func signingKeyAAD(kid string) []byte { return []byte("oauth-signing-key\x00" + kid) }

// sealSigningKey is what the store keeps of a new signing key.
func (s *Server) sealSigningKey(kid, pem string) string {
	return sealedKeyPrefix + s.sealer(infoSealSigning).Seal([]byte(pem), signingKeyAAD(kid))
}

// signingKey opens a stored signing key; one stored in the clear is sealed
// in place (a racing process may do it first: that is the same).
func (s *Server) signingKey(ctx context.Context, k Key) (*ecdsa.PrivateKey, error) {
	pem := k.Material
	if sealed, ok := strings.CutPrefix(k.Material, sealedKeyPrefix); ok {
		plain, err := s.sealer(infoSealSigning).Open(sealed, signingKeyAAD(k.ID))
		if errors.Is(err, seal.ErrMalformed) {
			return nil, fmt.Errorf("oauth: signing key %s: sealed key is malformed", k.ID)
		} else if err != nil {
			return nil, fmt.Errorf("oauth: signing key %s does not open with this pepper: another installation's seal key?", k.ID)
		}
		pem = string(plain)
	}
	priv, err := keys.ParseP256(pem)
	if err != nil {
		return nil, fmt.Errorf("oauth: signing key %s: %w", k.ID, err)
	}
	if pem == k.Material {
		if _, err := s.db.ReplaceOAuthKeyMaterial(ctx, k.ID, k.Material, s.sealSigningKey(k.ID, pem)); err != nil {
			return nil, fmt.Errorf("oauth: seal signing key %s: %w", k.ID, err)
		}
	}
	return priv, nil
}
