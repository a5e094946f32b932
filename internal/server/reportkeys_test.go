package server_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports/attest"
)

// get fetches a public path without a token and returns the answer's
// status, headers and body.
func (e *env) getPublic(path string) (int, http.Header, []byte) {
	e.t.Helper()
	res, err := e.ts.Client().Get(e.ts.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// publicKeys fetches a key document and parses it as a verifier would.
func (e *env) publicKeys(path string) []attest.PublicKey {
	e.t.Helper()
	code, h, body := e.getPublic(path)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s = %d %s", path, code, body)
	}
	if h.Get("Cache-Control") == "" || h.Get("Cache-Control") == "no-store" {
		e.t.Errorf("GET %s: Cache-Control %q, want a public max-age", path, h.Get("Cache-Control"))
	}
	keys, err := attest.ParsePublicKeys(body)
	if err != nil {
		e.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	return keys
}

func keyIDs(keys []attest.PublicKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

// TestReportKeysEndpoints: a bundle statement signed with the first key
// verifies with the keys the endpoints serve, also after a rotation; the
// per-key PEM holds just that key; an unknown key is 404.
func TestReportKeysEndpoints(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		e, _ := newEnv(t, dialect, envConfig{})
		priv, err := e.srv.ReportKeys().SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		old, err := attest.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		st, err := attest.NewStatement([]attest.Subject{{
			Name:   "report.pdf",
			Digest: map[string]string{"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		}}, attest.PredicateType, &attest.AuditReport{
			Release:      attest.Release{Product: "widget", Version: "1.4.0"},
			Recipient:    attest.Recipient{Tenant: "acme"},
			SigningKeyID: old.KeyID(),
		})
		if err != nil {
			t.Fatal(err)
		}
		env, err := old.Sign(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyIDs(e.publicKeys("/.well-known/vigil/report-keys")); len(got) != 1 || got[0] != old.KeyID() {
			t.Fatalf("JWKS before rotation: %v, want [%s]", got, old.KeyID())
		}

		rotated, err := e.srv.ReportKeys().Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{rotated.ID, old.KeyID()}
		for _, path := range []string{"/.well-known/vigil/report-keys", "/.well-known/vigil/report-keys.pem"} {
			keys := e.publicKeys(path)
			if got := keyIDs(keys); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("GET %s after rotation: %v, want %v", path, got, want)
			}
			v, err := attest.Verify(ctx, env, keys)
			if err != nil {
				t.Fatalf("the old key's envelope does not verify with %s: %v", path, err)
			}
			if v.KeyID != old.KeyID() {
				t.Errorf("verified by %s, want %s", v.KeyID, old.KeyID())
			}
		}
		for _, id := range want {
			if got := keyIDs(e.publicKeys("/.well-known/vigil/report-keys/" + id + ".pem")); len(got) != 1 || got[0] != id {
				t.Errorf("GET …/%s.pem: %v, want that key alone", id, got)
			}
		}
		for _, path := range []string{"/.well-known/vigil/report-keys/unknown.pem", "/.well-known/vigil/report-keys/" + old.KeyID()} {
			if code, _, body := e.getPublic(path); code != http.StatusNotFound {
				t.Errorf("GET %s = %d %s, want 404", path, code, body)
			}
		}
	})
}
