package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// The link to the scan in a gate answer comes from the configured public
// URL, or is relative: a client's Host header never makes it.
func TestGateLinkIgnoresTheHostHeader(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		for _, tt := range []struct {
			publicURL, wantPrefix string
		}{
			{"", "/api/v1/scans/"},
			{"https://vigil.example.com:8443/", "https://vigil.example.com:8443/api/v1/scans/"},
		} {
			// Workers are not started: the scan stays queued.
			e, _ := newEnv(t, dialect, envConfig{modify: func(c *server.Config) { c.PublicURL = tt.publicURL }})
			r, clean, _ := repo(t)
			e.createProject("app", "file://"+r.Dir)
			var sc struct{ ID string }
			if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &sc); code != http.StatusAccepted {
				t.Fatalf("POST scan: %d", code)
			}
			for _, host := range []string{"", "evil.example", "evil.example:443", "vigil.example.com@evil.example"} {
				req, err := http.NewRequestWithContext(context.Background(), "GET", e.ts.URL+"/api/v1/gate?project=app&commit="+clean, nil)
				if err != nil {
					t.Fatal(err)
				}
				if host != "" {
					req.Host = host
				}
				resp, err := e.api.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var g gateJSON
				err = json.NewDecoder(resp.Body).Decode(&g)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("gate with Host %q: %d %v", host, resp.StatusCode, err)
				}
				if want := tt.wantPrefix + sc.ID; g.Scan != want {
					t.Errorf("public URL %q, Host %q: scan link %q, want %q", tt.publicURL, host, g.Scan, want)
				}
			}
		}
	})
}
