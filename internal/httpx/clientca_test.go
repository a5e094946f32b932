package httpx

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/httpx/httpxtest"
)

func TestClientCertificates(t *testing.T) {
	t.Parallel()
	ca := httpxtest.NewCA(t, "kube-apiserver CA")
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cas, err := LoadClientCAs(file)
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/admission", RequireClientCert(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "admitted "+r.TLS.PeerCertificates[0].Subject.CommonName)
	})))
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	RequestClientCerts(srv.TLS, cas)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := func(certs ...tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		return &http.Client{Transport: tr}
	}
	get := func(c *http.Client, path string) (int, string, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	// A certificate from the CA reaches the protected handler.
	if code, body, err := get(client(ca.Client(t, "kube-apiserver")), "/admission"); err != nil || code != 200 || body != "admitted kube-apiserver" {
		t.Errorf("with a client certificate: %d %q %v", code, body, err)
	}
	// No certificate: the connection works, the protected handler refuses
	// with a JSON error, other handlers answer.
	code, body, err := get(client(), "/admission")
	var apiErr struct{ Code, Message string }
	if err != nil || code != http.StatusUnauthorized || json.Unmarshal([]byte(body), &apiErr) != nil || apiErr.Code != CodeClientCertRequired {
		t.Errorf("without a client certificate: %d %q %v; want 401 %s", code, body, err, CodeClientCertRequired)
	}
	if code, body, err := get(client(), "/other"); err != nil || code != 200 || body != "ok" {
		t.Errorf("other endpoint without a client certificate: %d %q %v", code, body, err)
	}
	// A certificate from another CA, sent although the server names its
	// CA, fails the handshake.
	rogue := httpxtest.NewCA(t, "rogue").Client(t, "kube-apiserver")
	c := client()
	c.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &rogue, nil
	}
	if code, body, err := get(c, "/admission"); err == nil {
		t.Errorf("a certificate from another CA was accepted: %d %q", code, body)
	}
	// Plain HTTP has no client certificate.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/admission", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("without TLS: %d, want 401", rec.Code)
	}
}

func TestLoadClientCAsErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o600)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), 0o600)
	for _, f := range []string{empty, bad, filepath.Join(dir, "missing.pem")} {
		if _, err := LoadClientCAs(f); err == nil || !strings.Contains(err.Error(), filepath.Base(f)) {
			t.Errorf("LoadClientCAs(%s): %v; want an error naming the file", f, err)
		}
	}
}
