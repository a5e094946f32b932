package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-sec/vigil/internal/keys"
)

// ErrBadKey is a public key file that cannot be used: not PEM or JWKS, a
// key that is not ECDSA P-256, a private key, a kid that is not the key's
// thumbprint.
var ErrBadKey = errors.New("unusable public key")

// PublicKey is a report-signing public key with its ID, the RFC 7638
// thumbprint of the key.
type PublicKey struct {
	ID  string
	Key *ecdsa.PublicKey
}

// NewPublicKey names an ECDSA P-256 public key by its thumbprint.
func NewPublicKey(pub *ecdsa.PublicKey) (PublicKey, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return PublicKey{}, fmt.Errorf("%w: not an ECDSA P-256 key", ErrBadKey)
	}
	id, err := keys.Thumbprint(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return PublicKey{ID: id, Key: pub}, nil
}

// MarshalPEM writes the keys as "PUBLIC KEY" PEM blocks (PKIX), each
// preceded by a comment line naming its key ID. openssl and cosign read
// the first block of such a file.
func MarshalPEM(pubs ...PublicKey) ([]byte, error) {
	var b bytes.Buffer
	for _, k := range pubs {
		der, err := x509.MarshalPKIXPublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("attest: encoding key %s: %w", k.ID, err)
		}
		fmt.Fprintf(&b, "# key ID %s\n", k.ID)
		if err := pem.Encode(&b, &pem.Block{Type: "PUBLIC KEY", Bytes: der}); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// MarshalJWKS writes the keys as a JWK Set (RFC 7517): kty EC, crv P-256,
// alg ES256, use sig, kid the thumbprint.
func MarshalJWKS(pubs ...PublicKey) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(pubs))}
	for _, k := range pubs {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return json.Marshal(set)
}

// ParsePublicKeys reads public keys from PEM ("PUBLIC KEY" blocks, text
// between them ignored) or from JSON (a JWK Set or a single JWK). Every
// key must be ECDSA P-256; a JWK's kid, when present, must be its
// thumbprint.
func ParsePublicKeys(data []byte) ([]PublicKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return parseJWKS(trimmed)
	}
	return parsePEM(data)
}

func parsePEM(data []byte) ([]PublicKey, error) {
	var out []PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%w: a PEM block of type %q, want \"PUBLIC KEY\"", ErrBadKey, b.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		k, err := publicKey(pub)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: neither a PEM public key nor a JWKS", ErrBadKey)
	}
	return out, nil
}

func parseJWKS(data []byte) ([]PublicKey, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: not a JWK Set: %v", ErrBadKey, err)
	}
	var jwks []jose.JSONWebKey
	if probe.Keys == nil {
		var one jose.JSONWebKey
		if err := json.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("%w: not a JWK: %v", ErrBadKey, err)
		}
		jwks = []jose.JSONWebKey{one}
	} else {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(data, &set); err != nil {
			return nil, fmt.Errorf("%w: not a JWK Set: %v", ErrBadKey, err)
		}
		jwks = set.Keys
	}
	out := make([]PublicKey, 0, len(jwks))
	for _, j := range jwks {
		if !j.IsPublic() {
			return nil, fmt.Errorf("%w: the JWK %q is a private key; give the public key", ErrBadKey, j.KeyID)
		}
		k, err := publicKey(j.Key)
		if err != nil {
			return nil, err
		}
		if j.KeyID != "" && j.KeyID != k.ID {
			return nil, fmt.Errorf("%w: the JWK's kid %q is not its RFC 7638 thumbprint %q", ErrBadKey, j.KeyID, k.ID)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the JWK Set holds no key", ErrBadKey)
	}
	return out, nil
}

func publicKey(key any) (PublicKey, error) {
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: a %T, want an ECDSA P-256 public key", ErrBadKey, key)
	}
	return NewPublicKey(pub)
}
