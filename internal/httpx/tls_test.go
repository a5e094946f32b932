package httpx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLoadOrCreateCert(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")

	cert, fp, created, err := LoadOrCreateCert(dir, []string{"vigil.example.com", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first call: created = false, want true")
	}

	again, fp2, created, err := LoadOrCreateCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second call: created = true, want false (reuse)")
	}
	if fp2 != fp || !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Errorf("second call gave another certificate: %s, want %s", fp2, fp)
	}

	for name, want := range map[string]os.FileMode{KeyFile: 0o600, CertFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", name, got, want)
		}
	}

	// The fingerprint is the SHA-256 of the DER in cert.pem.
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(block.Bytes)
	wantFP := strings.ToUpper(pairs(hex.EncodeToString(sum[:])))
	if fp != wantFP {
		t.Errorf("fingerprint = %s, want %s", fp, wantFP)
	}

	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("usage = %v %v, want digitalSignature, serverAuth", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days < 365 || days > 366 {
		t.Errorf("validity = %.1f days, want a year", days)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "vigil.example.com", "10.1.2.3"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("certificate does not cover %s: %v", host, err)
		}
	}
	if h, err := os.Hostname(); err == nil {
		if !slices.Contains(leaf.DNSNames, h) && leaf.VerifyHostname(h) != nil {
			t.Errorf("certificate does not cover the host name %s", h)
		}
	}

	// openssl, when installed, shows the same fingerprint.
	if _, err := exec.LookPath("openssl"); err == nil {
		out, err := exec.Command("openssl", "x509", "-in", filepath.Join(dir, CertFile), "-noout", "-fingerprint", "-sha256").Output()
		if err != nil {
			t.Fatal(err)
		}
		_, got, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		if got != fp {
			t.Errorf("openssl fingerprint = %s, want %s", got, fp)
		}
	}
}

// pairs puts a colon between each pair of hex digits.
func pairs(s string) string {
	var parts []string
	for i := 0; i < len(s); i += 2 {
		parts = append(parts, s[i:i+2])
	}
	return strings.Join(parts, ":")
}

// A key left without a certificate (a first run cut short) is replaced.
func TestLoadOrCreateCertReplacesOrphanKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, created, err := LoadOrCreateCert(dir, nil)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateCert = created %v, %v; want a new certificate", created, err)
	}
}

// A client that pins the printed fingerprint connects; one pinning another
// fingerprint does not.
func TestPinnedFingerprint(t *testing.T) {
	t.Parallel()
	cert, fp, _, err := LoadOrCreateCert(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(Health))
	srv.TLS = TLSConfig(cert)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	pinned := func(pin string) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // replaced by the pin check below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || Fingerprint(cs.PeerCertificates[0].Raw) != pin {
					return errors.New("certificate fingerprint does not match the pin")
				}
				return nil
			},
		}}}
	}

	resp, err := pinned(fp).Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("pinned client: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("pinned client: %d %q over TLS %x", resp.StatusCode, body, resp.TLS.Version)
	}

	if _, err := pinned(strings.Repeat("00:", 31) + "00").Get(srv.URL); err == nil {
		t.Error("a client pinning another fingerprint connected")
	}

	// The certificate also verifies normally for 127.0.0.1 once trusted.
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err = client.Get(srv.URL)
	if err != nil {
		t.Fatalf("client trusting the certificate: %v", err)
	}
	resp.Body.Close()

	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	}}}
	if _, err := old.Get(srv.URL); err == nil {
		t.Error("a TLS 1.1 client connected")
	}
}

func TestLoadCertErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, _, _, err := LoadOrCreateCert(dir, nil); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, cert, key, wantInErr string
	}{
		{"missing certificate", missing, keyFile, missing},
		{"missing key", certFile, missing, missing},
		{"bad key", certFile, garbage, garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCert(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("LoadCert(%s, %s) error = %v, want it to name %s", tt.cert, tt.key, err, tt.wantInErr)
			}
		})
	}
	if _, err := LoadCert(certFile, keyFile); err != nil {
		t.Errorf("LoadCert of the generated pair: %v", err)
	}
}
