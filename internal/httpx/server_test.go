package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestNewServerBoundsEverything(t *testing.T) {
	t.Parallel()
	srv := NewServer(ServerConfig{Addr: ":8443", ReadTimeout: time.Second})
	if srv.ReadTimeout != time.Second || srv.ReadHeaderTimeout != DefaultReadHeaderTimeout ||
		srv.WriteTimeout != DefaultWriteTimeout || srv.IdleTimeout != DefaultIdleTimeout ||
		srv.MaxHeaderBytes != DefaultMaxHeaderBytes || srv.ErrorLog == nil {
		t.Errorf("NewServer left a bound unset: %+v", srv)
	}
}

// serveTLS starts Serve over real TLS on loopback and returns its URL, a
// client trusting its certificate and Serve's result.
func serveTLS(t *testing.T, ctx context.Context, h http.Handler, grace time.Duration) (string, *http.Client, <-chan error) {
	t.Helper()
	cert, _, _, err := LoadOrCreateCert(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ServerConfig{Handler: h, TLSConfig: TLSConfig(cert)})
	done := make(chan error, 1)
	go func() { done <- serve(ctx, srv, ln, true, grace) }()

	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	t.Cleanup(client.CloseIdleConnections)
	return "https://" + ln.Addr().String(), client, done
}

func TestServeDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte("done"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, client, served := serveTLS(t, ctx, h, 10*time.Second)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()

	<-started
	cancel()
	if r := <-got; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request = %q, %v; want it to finish", r.body, r.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	if _, err := client.Get(url); err == nil {
		t.Error("the server still accepts requests after shutdown")
	}
}

func TestServeCutsOffPastGrace(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, client, served := serveTLS(t, ctx, h, 100*time.Millisecond)

	go func() {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case err := <-served:
		if err == nil {
			t.Error("Serve = nil, want an error saying requests were cut off")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the grace period")
	}
}

func TestServeTLSWithoutCertificate(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(context.Background(), NewServer(ServerConfig{}), ln, true); err == nil {
		t.Error("Serve with TLS and no certificate = nil, want an error")
	}
}
