package ci

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-sec/vigil/internal/seal"
)

// sealPrefix marks a sealed secret and the scheme that sealed it.
const sealPrefix = "aesgcm1:"

// Sealer seals the secrets of projects that the store keeps (webhook
// secrets, forge tokens): verifying an HMAC or posting a status needs the
// secret itself, so it cannot be hashed, and a copy of the database alone
// must not reveal it.
type Sealer struct{ s *seal.Sealer }

// NewSealer makes a Sealer with the installation's seal key
// (seal.KeySize bytes).
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != seal.KeySize {
		return nil, fmt.Errorf("ci: seal key is %d bytes, want %d", len(key), seal.KeySize)
	}
	s, err := seal.New(key, base64.RawStdEncoding)
	if err != nil {
		return nil, fmt.Errorf("ci: %w", err)
	}
	return &Sealer{s: s}, nil
}

// Seal encrypts secret, bound to aad (a project's name, ForgeTokenAAD):
// a sealed secret copied to another row does not open.
func (s *Sealer) Seal(aad, secret string) string {
	return sealPrefix + s.s.Seal([]byte(secret), []byte(aad))
}

// Open decrypts what Seal sealed with the same aad. Its errors say what
// is wrong without the value.
func (s *Sealer) Open(aad, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errors.New("ci: the stored value is not sealed")
	}
	pt, err := s.s.Open(b64, []byte(aad))
	if errors.Is(err, seal.ErrMalformed) {
		return "", errors.New("ci: a sealed value is malformed")
	}
	if err != nil {
		return "", errors.New("ci: a sealed value does not open with this seal key (another installation's seal.key?)")
	}
	return string(pt), nil
}
