package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/vigil-sec/vigil/licensing/client"
)

// An application activates once, then refreshes its lease before it runs
// out; the state file keeps its place in the nonce chain across restarts.
func Example() {
	ctx := context.Background()
	pem, err := os.ReadFile("/etc/example-app/licensing-ca.pem") // vigil serve's DATA/tls/cert.pem
	if err != nil {
		fmt.Println(err)
		return
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.New(client.Config{
		BaseURL:    "https://licensing.example.com:8443",
		TenantID:   "01a2…",
		ProductID:  "com.example.app",
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}},
		State:      &client.FileStore{Path: filepath.Join(os.Getenv("HOME"), ".config", "example-app", "license.json")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.State(ctx); errors.Is(err, client.ErrNotActivated) {
		if _, err := c.Activate(ctx, "ABCD-EFGH-JKLM-NPQR", "build-host-1", nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	g, err := c.Refresh(ctx)
	var e *client.APIError
	switch {
	case errors.As(err, &e) && e.Code == client.CodeNonceMismatch:
		// The saved nonce is not the server's (a restored backup): free
		// the seat, then activate again.
		err = c.Deactivate(ctx)
	case err == nil:
		fmt.Println("licensed until", g.LeaseExpiresAt)
	}
	if err != nil {
		fmt.Println(err)
	}
}
