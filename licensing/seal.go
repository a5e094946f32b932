package licensing

import (
	"encoding/base64"

	"github.com/vigil-sec/vigil/internal/seal"
)

// sealer encrypts what the service stores but must not keep in the clear
// (stored answers, offline private keys, webhook keys and secrets, signing
// keys): internal/seal's AES-256-GCM under a key derived from the
// licensing secret, base64url. The associated data binds a sealed value to
// what it belongs to, so it cannot be moved to another row.
type sealer struct{ s *seal.Sealer }

// newSealer makes a sealer from a 32-byte key (derive's output).
func newSealer(key []byte) sealer {
	s, err := seal.New(key, base64.RawURLEncoding)
	if err != nil {
		panic("licensing: " + err.Error()) // derive gives 32 bytes
	}
	return sealer{s: s}
}

func (s sealer) seal(plain []byte, aad string) string { return s.s.Seal(plain, []byte(aad)) }

// Why open fails; callers say what the value was.
var (
	errSealMalformed = seal.ErrMalformed
	errSealOpen      = seal.ErrOpen // another secret, an altered row, other associated data
)

// open returns the plain value, or errSealMalformed or errSealOpen.
func (s sealer) open(sealed, aad string) ([]byte, error) { return s.s.Open(sealed, []byte(aad)) }
