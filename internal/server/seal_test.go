package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

func TestDerivedKeys(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, server.SealKeySize)
	sec, err := server.LicensingSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	pep, err := server.OAuthPepper(key)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{8}, server.SealKeySize)
	sec2, _ := server.LicensingSecret(other)
	switch {
	case len(sec) != 32 || len(pep) != 32:
		t.Errorf("sizes %d, %d; want 32", len(sec), len(pep))
	case bytes.Equal(sec, pep), bytes.Equal(sec, key), bytes.Equal(pep, key):
		t.Errorf("the derived keys are not distinct from each other and the seal key")
	case bytes.Equal(sec, sec2):
		t.Errorf("two seal keys derive the same secret")
	}
	again, _ := server.LicensingSecret(key)
	if !bytes.Equal(sec, again) {
		t.Errorf("the derivation is not stable")
	}
	for _, bad := range [][]byte{nil, key[:16], append(key, 0)} {
		if _, err := server.LicensingSecret(bad); err == nil {
			t.Errorf("a %d-byte seal key derived a secret", len(bad))
		}
	}
}

// TestSealKeyOpensTheInstallation: a server keeps neither the licensing
// secret nor the OAuth pepper in its database; what it made works again
// with its seal key, and not with another one.
func TestSealKeyOpensTheInstallation(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := t.Context()
		db, blobs := openStore(t, dialect)
		key := make([]byte, server.SealKeySize)
		rand.Read(key)
		start := func(key []byte) (*server.Server, error) {
			return server.New(ctx, server.Config{DB: db, Blobs: blobs, SealKey: key, Logger: storetest.Logger(t)})
		}
		srv, err := start(key)
		if err != nil {
			t.Fatal(err)
		}
		creds, _, err := srv.Bootstrap(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lic := srv.Licensing()
		tn, err := lic.CreateTenant(ctx, "Acme")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lic.CreateProduct(ctx, "com.example.app", "App"); err != nil {
			t.Fatal(err)
		}
		ent, err := lic.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: 3, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if ks, _ := db.ListLicensingKeys(ctx, licensing.KeySecret); len(ks) != 0 {
			t.Errorf("the licensing secret is in the database")
		}
		if ks, _ := db.ListOAuthKeys(ctx, oauth.KeyPepper); len(ks) != 0 {
			t.Errorf("the oauth pepper is in the database")
		}

		works := func(srv *server.Server, seat string) (tokenStatus int, activateErr error) {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {creds.ClientID}, "client_secret": {creds.ClientSecret}}
			req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, req)
			_, _, err := srv.Licensing().Activate(context.Background(), licensing.ActivateRequest{TenantID: tn.ID, ProductID: "com.example.app", ActivationCode: ent.ActivationCode, SeatID: seat})
			return w.Code, err
		}
		again, err := start(key)
		if err != nil {
			t.Fatal(err)
		}
		if code, err := works(again, "a"); code != http.StatusOK || err != nil {
			t.Errorf("restart with the seal key: token %d, activate %v", code, err)
		}
		// Another seal key opens nothing: the server does not start, and
		// says why.
		otherKey := make([]byte, server.SealKeySize)
		rand.Read(otherKey)
		if _, err := start(otherKey); err == nil || !strings.Contains(err.Error(), "seal key") {
			t.Errorf("start with another seal key: %v, want an error naming the seal key", err)
		}
	})
}
