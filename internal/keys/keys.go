// Package keys makes and reads the ECDSA P-256 private keys that Vigil
// signs with (OAuth2 access tokens, license tokens, report bundles), kept
// as PKCS#8 PEM text, and names their public halves by RFC 7638
// thumbprint.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// NewP256 makes a P-256 key and returns it with its PKCS#8 PEM encoding.
func NewP256() (*ecdsa.PrivateKey, string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generating a P-256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("encoding a P-256 key: %w", err)
	}
	return priv, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// ParseP256 reads a PKCS#8 PEM private key and checks that it is ECDSA
// P-256.
func ParseP256(pemText string) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return priv, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of the public key (SHA-256,
// base64url without padding): the key ID ("kid") of every key Vigil
// publishes.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
