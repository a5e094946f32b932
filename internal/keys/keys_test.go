package keys_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/keys"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	priv, text, err := keys.NewP256()
	if err != nil {
		t.Fatal(err)
	}
	got, err := keys.ParseP256(text)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(priv) {
		t.Error("the parsed key differs from the one made")
	}
}

func TestParseRefusesOtherKeys(t *testing.T) {
	t.Parallel()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	other := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	for in, want := range map[string]string{"": "not PEM", "garbage": "not PEM", other: "P-256"} {
		if _, err := keys.ParseP256(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseP256(%.20q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// TestThumbprint computes the RFC 7638 thumbprint by hand: SHA-256 of the
// required members in lexicographic order, no whitespace, coordinates
// base64url without padding, then base64url of the hash.
func TestThumbprint(t *testing.T) {
	t.Parallel()
	priv, _, err := keys.NewP256()
	if err != nil {
		t.Fatal(err)
	}
	var x, y [32]byte
	priv.X.FillBytes(x[:])
	priv.Y.FillBytes(y[:])
	enc := base64.RawURLEncoding
	canonical := `{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(x[:]) + `","y":"` + enc.EncodeToString(y[:]) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	want := enc.EncodeToString(sum[:])

	got, err := keys.Thumbprint(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Thumbprint = %s, want %s", got, want)
	}
}
