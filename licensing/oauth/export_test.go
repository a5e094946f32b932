package oauth

import (
	"context"
	"crypto/ecdsa"
)

// OpenSigningKey opens a stored signing key, for tests that forge tokens.
func OpenSigningKey(ctx context.Context, s *Server, k Key) (*ecdsa.PrivateKey, error) {
	return s.signingKey(ctx, k)
}

// The secret hash schemes and the sealed pepper's prefix, for tests that
// look for secrets in a dump of the database.
const (
	HashPrefix         = hashPrefix
	LegacyHashPrefix   = legacyHashPrefix
	SealedPepperPrefix = sealedPepperPrefix
)

// Mac is mac, for tests that forge what an older installation stored.
var Mac = mac

// SigningKID is the kid the server signs with.
func SigningKID(s *Server) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signingKID
}
