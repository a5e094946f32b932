package oauth_test

import (
	"crypto/hmac"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/oauth"
)

// testPepper stands for the pepper the server derives from its seal key.
var testPepper = []byte("oauth-pepper-derived-from-seal.k")

func newTestServer(t *testing.T, db *store.DB, pepper []byte) (*oauth.Server, error) {
	t.Helper()
	cfg := oauth.DefaultConfig()
	cfg.Pepper = pepper
	cfg.RateBurst = 1000
	cfg.Logger = storetest.Logger(t)
	return oauth.New(t.Context(), db, cfg)
}

// tokenStatus asks the token endpoint for a token with the credentials.
func tokenStatus(t *testing.T, s *oauth.Server, id, secret string) int {
	t.Helper()
	mux := http.NewServeMux()
	s.Register(mux)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w.Code
}

// verifiers returns the byte strings of a dump of the database that
// verify a client's secret as a pepper (the hash with either prefix).
func verifiers(t *testing.T, db *store.DB, clients map[string]string) []string {
	t.Helper()
	var found []string
	for _, c := range storetest.ByteStrings(storetest.Dump(t, db)) {
		for id, secret := range clients {
			stored, err := db.GetOAuthClient(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{oauth.HashPrefix, oauth.LegacyHashPrefix} {
				if hmac.Equal([]byte(stored.SecretHash), []byte(p+base64.RawURLEncoding.EncodeToString(oauth.Mac(c, id, secret)))) {
					found = append(found, id)
				}
			}
		}
	}
	return found
}

func TestPepperNotInDump(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		db := storetest.Open(t, dialect)
		s, err := newTestServer(t, db, testPepper)
		if err != nil {
			t.Fatal(err)
		}
		id, secret, err := s.CreateClient(t.Context(), "ci", []string{"scans:read"})
		if err != nil {
			t.Fatal(err)
		}
		if ks, _ := db.ListOAuthKeys(t.Context(), oauth.KeyPepper); len(ks) != 0 {
			t.Errorf("a pepper was stored in the database")
		}
		if got := verifiers(t, db, map[string]string{id: secret}); len(got) > 0 {
			t.Errorf("a byte string of the dump verifies the secret of %v", got)
		}
		c, _ := db.GetOAuthClient(t.Context(), id)
		if c.SecretHash != oauth.HashPrefix+base64.RawURLEncoding.EncodeToString(oauth.Mac(testPepper, id, secret)) {
			t.Errorf("the pepper does not verify the stored hash: the check above is blind")
		}
		if code := tokenStatus(t, s, id, secret); code != http.StatusOK {
			t.Errorf("token: %d", code)
		}
		noPrivateKeys(t, db)
	})
}

// noPrivateKeys fails if a private key is in a dump of the database.
func noPrivateKeys(t *testing.T, db *store.DB) {
	t.Helper()
	for _, v := range storetest.Dump(t, db) {
		if strings.Contains(v, "PRIVATE KEY") {
			t.Errorf("a private key is in the dump: %.40s…", v)
		}
	}
}

func TestLegacyPepperMigrates(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := t.Context()
		db := storetest.Open(t, dialect)
		// The installation as it was: the pepper and the signing key in the
		// clear, hashes keyed by the pepper.
		priv, pem, err := keys.NewP256()
		if err != nil {
			t.Fatal(err)
		}
		kid, err := keys.Thumbprint(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.EnsureOAuthKey(ctx, oauth.Key{ID: kid, Kind: oauth.KeySigning, Material: pem}); err != nil {
			t.Fatal(err)
		}
		legacy := []byte("a-random-legacy-pepper-32-bytes!")
		if _, err := db.EnsureOAuthKey(ctx, oauth.Key{ID: "pepper-old", Kind: oauth.KeyPepper, Material: base64.RawURLEncoding.EncodeToString(legacy)}); err != nil {
			t.Fatal(err)
		}
		secrets := map[string]string{"ci": "ci-secret", "admin": "admin-secret", "old": "old-secret"}
		for id, secret := range secrets {
			if _, err := db.CreateOAuthClient(ctx, oauth.StoredClient{ID: id, Name: id, Scopes: []string{"admin"},
				SecretHash: oauth.LegacyHashPrefix + base64.RawURLEncoding.EncodeToString(oauth.Mac(legacy, id, secret))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.RevokeOAuthClient(ctx, "old"); err != nil {
			t.Fatal(err)
		}
		if got := verifiers(t, db, secrets); len(got) != len(secrets) {
			t.Fatalf("the legacy dump verifies %v: the check is blind", got)
		}

		s, err := newTestServer(t, db, testPepper) // first start after the upgrade
		if err != nil {
			t.Fatal(err)
		}
		if got := verifiers(t, db, secrets); len(got) > 0 {
			t.Errorf("after the upgrade a byte string of the dump verifies the secrets of %v", got)
		}
		noPrivateKeys(t, db)
		if oauth.SigningKID(s) != kid {
			t.Errorf("signing with %s, want the installation's key %s", oauth.SigningKID(s), kid)
		}
		if code := tokenStatus(t, s, "ci", "ci-secret"); code != http.StatusOK {
			t.Errorf("a legacy client after the upgrade: token %d", code)
		}
		if code := tokenStatus(t, s, "ci", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("a legacy client with a wrong secret: token %d", code)
		}
		if code := tokenStatus(t, s, "old", "old-secret"); code == http.StatusOK {
			t.Errorf("a revoked legacy client got a token")
		}
		if c, _ := db.GetOAuthClient(ctx, "ci"); !strings.HasPrefix(c.SecretHash, oauth.HashPrefix) {
			t.Errorf("ci's hash was not made again with the pepper: %q", c.SecretHash)
		}
		if c, _ := db.GetOAuthClient(ctx, "admin"); !strings.HasPrefix(c.SecretHash, oauth.LegacyHashPrefix) {
			t.Errorf("admin's hash changed although it did not authenticate")
		}

		// Restarts: the sealed legacy pepper stays while an active client needs it.
		if s, err = newTestServer(t, db, testPepper); err != nil {
			t.Fatal(err)
		}
		if ks, _ := db.ListOAuthKeys(ctx, oauth.KeyPepper); len(ks) != 1 || !strings.HasPrefix(ks[0].Material, oauth.SealedPepperPrefix) {
			t.Fatalf("pepper rows while admin has a legacy hash: %+v", ks)
		}
		if code := tokenStatus(t, s, "admin", "admin-secret"); code != http.StatusOK {
			t.Errorf("admin after a restart: token %d", code)
		}
		if code := tokenStatus(t, s, "ci", "ci-secret"); code != http.StatusOK {
			t.Errorf("ci after its rehash: token %d", code)
		}
		if s, err = newTestServer(t, db, testPepper); err != nil {
			t.Fatal(err)
		}
		if ks, _ := db.ListOAuthKeys(ctx, oauth.KeyPepper); len(ks) != 0 {
			t.Errorf("the legacy pepper is still stored after every active client was rehashed")
		}
		for _, id := range []string{"ci", "admin"} {
			if code := tokenStatus(t, s, id, secrets[id]); code != http.StatusOK {
				t.Errorf("%s after the legacy pepper was deleted: token %d", id, code)
			}
		}
		if code := tokenStatus(t, s, "old", "old-secret"); code == http.StatusOK {
			t.Errorf("the revoked legacy client got a token")
		}
	})
}

func TestLegacyPepperOtherSealKey(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		db := storetest.Open(t, dialect)
		if _, err := db.EnsureOAuthKey(t.Context(), oauth.Key{ID: "pepper-old", Kind: oauth.KeyPepper,
			Material: base64.RawURLEncoding.EncodeToString([]byte("a-random-legacy-pepper-32-bytes!"))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateOAuthClient(t.Context(), oauth.StoredClient{ID: "ci", Name: "ci", SecretHash: oauth.LegacyHashPrefix + "AAAA"}); err != nil {
			t.Fatal(err)
		}
		if _, err := newTestServer(t, db, testPepper); err != nil {
			t.Fatal(err)
		}
		_, err := newTestServer(t, db, []byte("another-installation-seal-key-32"))
		if err == nil || !strings.Contains(err.Error(), "seal key") {
			t.Errorf("start with another seal key: %v, want an error naming the seal key", err)
		}
	})
}
