package oauth

import (
	"context"
	"crypto/ecdsa"

	"github.com/vigil-sec/vigil/internal/store"
)

// OpenSigningKey opens a stored signing key, for tests that forge tokens.
func OpenSigningKey(ctx context.Context, s *Server, k store.OAuthKey) (*ecdsa.PrivateKey, error) {
	return s.signingKey(ctx, k)
}
