package httpx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names of the self-signed certificate inside the directory given to
// LoadOrCreateCert.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

const (
	certValidity = 365 * 24 * time.Hour
	// certBackdate covers clocks of clients that run a little behind.
	certBackdate = time.Hour
)

// LoadOrCreateCert returns the self-signed certificate kept in dir, making
// it on the first run: an ECDSA P-256 key, valid for a year, for localhost,
// 127.0.0.1, ::1, the machine's host name and hosts (names or IP addresses).
// cert.pem (0644) and key.pem (0600) are written atomically; created reports
// whether they were made by this call. An expired certificate is replaced.
//
// fingerprint is the SHA-256 of the certificate (see Fingerprint), for the
// operator to print and for clients to pin.
func LoadOrCreateCert(dir string, hosts []string) (cert tls.Certificate, fingerprint string, created bool, err error) {
	certPath := filepath.Join(dir, CertFile)
	keyPath := filepath.Join(dir, KeyFile)

	// The key is written before the certificate, so the certificate's
	// presence means both are complete; a key without a certificate is
	// the leftover of an interrupted first run and is replaced.
	_, certErr := os.Stat(certPath)
	switch {
	case certErr == nil:
		cert, err = LoadCert(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, "", false, err
		}
		if time.Now().Before(cert.Leaf.NotAfter) {
			return cert, Fingerprint(cert.Certificate[0]), false, nil
		}
	case !errors.Is(certErr, fs.ErrNotExist):
		return tls.Certificate{}, "", false, fmt.Errorf("stat TLS certificate %s: %w", certPath, certErr)
	}

	certPEM, keyPEM, err := newSelfSigned(hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("create TLS directory: %w", err)
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, "", false, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", false, err
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", false, fmt.Errorf("load new TLS certificate: %w", err)
	}
	return cert, Fingerprint(cert.Certificate[0]), true, nil
}

// LoadCert loads a PEM certificate chain and its private key, as given with
// --tls-cert and --tls-key. Errors name the file at fault.
func LoadCert(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load TLS key pair (certificate %s, key %s): %w", certFile, keyFile, err)
	}
	return cert, nil
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated
// upper-case hex, as browsers and `openssl x509 -fingerprint -sha256` show it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// TLSConfig is the server configuration for cert: TLS 1.2 or later, with Go's
// default cipher suites (ECDHE and AEAD only for TLS 1.2) and curves.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// newSelfSigned makes a PEM certificate and PKCS #8 key valid from now.
func newSelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Vigil"}, CommonName: "vigil self-signed"},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	seen := map[string]bool{}
	for _, h := range append(names, hosts...) {
		h = strings.TrimSpace(h)
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode TLS key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and
// renames it over path, so readers see the old file or the whole new one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadClientCAs reads the PEM certificates of the CAs that issue client
// certificates (--admission-client-ca). Errors name the file.
func LoadClientCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client CA %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("client CA %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// RequestClientCerts makes cfg ask every client for a certificate and
// verify the ones given against cas (tls.VerifyClientCertIfGiven): a
// client without one still connects, a client with one that does not
// verify is refused at the handshake. Handlers that need a verified
// client go behind RequireClientCert.
func RequestClientCerts(cfg *tls.Config, cas *x509.CertPool) {
	cfg.ClientCAs = cas
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
}

// CodeClientCertRequired is the error code of RequireClientCert.
const CodeClientCertRequired = "CLIENT_CERT_REQUIRED"

// RequireClientCert lets through only requests over TLS whose client
// certificate the server verified (see RequestClientCerts); others get
// 401 with CodeClientCertRequired.
func RequireClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			WriteError(w, http.StatusUnauthorized, CodeClientCertRequired, "this endpoint needs a TLS client certificate issued by the configured client CA")
			return
		}
		next.ServeHTTP(w, r)
	})
}
