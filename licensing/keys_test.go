package licensing_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// sealKeySecret stands for the secret the server derives from its seal
// key, which is never in the database.
var sealKeySecret = []byte("the-secret-derived-from-seal.key")

func newTestService(t *testing.T, db *store.DB, secret []byte) *licensing.Service {
	t.Helper()
	cfg := licensing.DefaultConfig()
	cfg.Secret = secret
	cfg.Logger = storetest.Logger(t)
	s, err := licensing.New(t.Context(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newLegacyService is the service as it was before the secret left the
// database: a random secret stored in licensing_keys in the clear, every
// key derived from it (what New did then).
func newLegacyService(t *testing.T, db *store.DB) (*licensing.Service, []byte) {
	t.Helper()
	legacy := make([]byte, 32)
	rand.Read(legacy)
	if _, err := db.EnsureLicensingKey(t.Context(), licensing.Key{ID: "secret-legacy", Kind: licensing.KeySecret,
		Material: base64.RawURLEncoding.EncodeToString(legacy)}); err != nil {
		t.Fatal(err)
	}
	// Its signing key, a PEM in the clear.
	priv, material, err := keys.NewP256()
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.EnsureLicensingKey(t.Context(), licensing.Key{ID: "lic-legacy", Kind: licensing.KeySigning, Material: material})
	if err != nil || k.Material != material {
		t.Fatalf("legacy signing key: %v", err)
	}
	s, err := licensing.NewLegacyService(db, legacy, k.ID, priv, storetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, legacy
}

// installation is what a test builds and then checks still works.
type installation struct {
	tenantID, code string
	webhookID      string
	hmacSecret     string // whsec_…
	webhookPublic  string // whpk_…
	act            licensing.CallRequest
	replay         licensing.Answer // the stored answer of act
}

func build(t *testing.T, s *licensing.Service) installation {
	t.Helper()
	ctx := t.Context()
	tn, err := s.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProduct(ctx, "com.example.app", "App"); err != nil {
		t.Fatal(err)
	}
	ent, err := s.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: 5, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OfflineKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wh, err := s.CreateWebhook(ctx, licensing.NewWebhook{TenantID: tn.ID, URL: "https://hooks.example.com/licensing", HMAC: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.WebhookKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	g, nonce, err := s.Activate(ctx, licensing.ActivateRequest{TenantID: tn.ID, ProductID: "com.example.app", ActivationCode: ent.ActivationCode, SeatID: "seat-1"})
	if err != nil {
		t.Fatal(err)
	}
	req := licensing.CallRequest{TenantID: tn.ID, Token: g.AccessToken, Nonce: nonce, IdempotencyKey: "refresh-1", Request: []byte("POST /api/v1/activation/refresh")}
	ans, err := s.Refresh(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return installation{tenantID: tn.ID, code: ent.ActivationCode, webhookID: wh.ID, hmacSecret: wh.Secret, webhookPublic: pub, act: req, replay: ans}
}

// check shows that s opens and uses everything inst made: the code
// activates, the stored answer replays, every offline private key opens
// and the signing one matches its public key, the webhook key signs what
// its public key verifies and the HMAC secret is the one shown.
func check(t *testing.T, s *licensing.Service, db *store.DB, inst installation) {
	t.Helper()
	ctx := t.Context()
	if _, _, err := s.Activate(ctx, licensing.ActivateRequest{TenantID: inst.tenantID, ProductID: "com.example.app", ActivationCode: inst.code, SeatID: "seat-2"}); err != nil {
		t.Errorf("activate with the code made before: %v", err)
	}
	ans, err := s.Refresh(ctx, inst.act)
	if err != nil {
		t.Errorf("replay of the stored answer: %v", err)
	} else if !ans.Replayed || !bytes.Equal(ans.Body, inst.replay.Body) || ans.Nonce != inst.replay.Nonce {
		t.Errorf("replay: replayed %v, same body %v, same nonce %v", ans.Replayed, bytes.Equal(ans.Body, inst.replay.Body), ans.Nonce == inst.replay.Nonce)
	}
	keys, err := db.OfflineKeys(ctx, inst.tenantID)
	if err != nil || len(keys) == 0 {
		t.Fatalf("offline keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		priv, err := licensing.OpenOfflineKey(s, k)
		if err != nil {
			t.Errorf("offline key %s: %v", k.Kind, err)
			continue
		}
		var pub []byte
		switch k.Kind {
		case licensing.OfflineKeyEd25519:
			sk := ed25519.NewKeyFromSeed(priv)
			pub = sk.Public().(ed25519.PublicKey)
			if !ed25519.Verify(pub, []byte("license"), ed25519.Sign(sk, []byte("license"))) {
				t.Errorf("offline signing key does not sign")
			}
		case licensing.OfflineKeyX25519:
			sk, err := ecdh.X25519().NewPrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			pub = sk.PublicKey().Bytes()
		default:
			continue // opened: the HPKE suite checks the rest
		}
		if base64.StdEncoding.EncodeToString(pub) != k.PublicKey {
			t.Errorf("offline %s key: the private key opened does not match the public key", k.Kind)
		}
	}
	priv, pub, err := licensing.TenantWebhookKey(ctx, s, inst.tenantID)
	if err != nil {
		t.Fatalf("webhook key: %v", err)
	}
	if pub != inst.webhookPublic {
		t.Errorf("webhook public key changed")
	}
	wantPub, err := webhooks.ParsePublicKey(inst.webhookPublic)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(wantPub, []byte("event"), ed25519.Sign(priv, []byte("event"))) {
		t.Errorf("the webhook key does not sign what its public key verifies")
	}
	w, err := db.GetLicenseWebhook(ctx, inst.tenantID, inst.webhookID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := licensing.OpenWebhookSecret(s, w)
	if err != nil {
		t.Fatalf("webhook HMAC secret: %v", err)
	}
	if webhooks.Secret(secret).String() != inst.hmacSecret {
		t.Errorf("webhook HMAC secret is not the one shown at creation")
	}
}

// noPrivateKeys fails if a private key is in a dump of the database:
// the token signing keys are stored sealed too.
func noPrivateKeys(t *testing.T, db *store.DB) {
	t.Helper()
	for _, v := range storetest.Dump(t, db) {
		if strings.Contains(v, "PRIVATE KEY") {
			t.Errorf("a private key is in the dump: %.40s…", v)
		}
	}
}

// sealedInDump is every sealed value of the database with what it is
// bound to, and the activation code hash.
type sealedInDump struct {
	what, sealed, aad string
	sealer            string // of a licensing.Keyring
}

func sealedValues(t *testing.T, db *store.DB, inst installation) (vals []sealedInDump, codeHash string) {
	t.Helper()
	ctx := t.Context()
	keys, err := db.OfflineKeys(ctx, inst.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		vals = append(vals, sealedInDump{"offline " + k.Kind + " key", k.SealedPrivate, licensing.OfflineKeyAAD(k), licensing.SealerOffline})
	}
	wk, err := db.GetWebhookKey(ctx, inst.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	vals = append(vals, sealedInDump{"webhook key", wk.PrivateKey, licensing.TenantKeyAAD(inst.tenantID), licensing.SealerHooks})
	w, err := db.GetLicenseWebhook(ctx, inst.tenantID, inst.webhookID)
	if err != nil {
		t.Fatal(err)
	}
	vals = append(vals, sealedInDump{"webhook secret", w.Secret, licensing.SecretAAD(w.ID), licensing.SealerHooks})
	rows, err := db.SQL().QueryContext(ctx, "SELECT activation_id, key_hash, sealed FROM licensing_idempotency")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var act, kh, sealed string
		if err := rows.Scan(&act, &kh, &sealed); err != nil {
			t.Fatal(err)
		}
		vals = append(vals, sealedInDump{"stored answer", sealed, act + "\x00" + kh, licensing.SealerAnswers})
	}
	if err := db.SQL().QueryRowContext(ctx, "SELECT code_hash FROM licensing_entitlements").Scan(&codeHash); err != nil {
		t.Fatal(err)
	}
	if len(vals) < 5 {
		t.Fatalf("only %d sealed values: the installation is incomplete", len(vals))
	}
	return vals, codeHash
}

// opens reports what the key candidate opens of vals, taken as the root
// secret (either derivation), as a sealing key itself, or as the key of
// the code hashes.
func opens(c []byte, vals []sealedInDump, codeHash, code string) []string {
	var got []string
	rings := []licensing.Keyring{}
	if len(c) > 0 {
		rings = append(rings, licensing.NewKeyring(c), licensing.LegacyKeyring(c))
	}
	for _, kr := range rings {
		for _, h := range []string{kr.CodeHash(code), licensing.CodeHashWithKey(c, code)} {
			if h == codeHash {
				got = append(got, "activation code hash")
			}
		}
		for _, v := range vals {
			if err := kr.Open(v.sealer, v.sealed, v.aad); err == nil {
				got = append(got, v.what)
			}
		}
	}
	if len(c) == 32 {
		for _, v := range vals {
			if err := licensing.OpenWithKey(c, v.sealed, v.aad); err == nil {
				got = append(got, v.what+" (as the sealing key)")
			}
		}
	}
	return got
}

// attack tries every byte string of a dump of the whole database as a key
// against every sealed value, and returns what opened.
func attack(t *testing.T, db *store.DB, inst installation) (opened []string, vals []sealedInDump, codeHash string) {
	t.Helper()
	vals, codeHash = sealedValues(t, db, inst)
	cands := storetest.ByteStrings(storetest.Dump(t, db))
	t.Logf("%d key candidates from the dump, %d sealed values", len(cands), len(vals))
	for _, c := range cands {
		opened = append(opened, opens(c, vals, codeHash, inst.code)...)
	}
	return opened, vals, codeHash
}

func TestDumpOpensNothing(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		db := storetest.Open(t, dialect)
		s := newTestService(t, db, sealKeySecret)
		inst := build(t, s)
		if ks, _ := db.ListLicensingKeys(t.Context(), licensing.KeySecret); len(ks) != 0 {
			t.Errorf("a secret was stored in the database: %d rows", len(ks))
		}
		opened, vals, codeHash := attack(t, db, inst)
		if len(opened) > 0 {
			t.Errorf("a dump of the database alone opens: %v", opened)
		}
		noPrivateKeys(t, db)
		// The same attack with the secret from outside opens everything,
		// so it is not blind.
		if got := opens(sealKeySecret, vals, codeHash, inst.code); len(got) != len(vals)+1 {
			t.Errorf("the secret opens %v, want all %d sealed values and the code hash", got, len(vals))
		}
		check(t, newTestService(t, db, sealKeySecret), db, inst)
		// Another installation's secret does not start, and says why.
		cfg := licensing.DefaultConfig()
		cfg.Secret = []byte("another-installation-seal-key-32")
		if _, err := licensing.New(t.Context(), db, cfg); err == nil || !strings.Contains(err.Error(), "seal key") {
			t.Errorf("start with another secret: %v, want an error naming the seal key", err)
		}
	})
}

func TestLegacyInstallationMigrates(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := t.Context()
		db := storetest.Open(t, dialect)
		legacy, _ := newLegacyService(t, db)
		inst := build(t, legacy)
		// Before: the dump alone opens everything (the bug).
		before, vals, _ := attack(t, db, inst)
		if len(before) < len(vals) {
			t.Fatalf("the legacy dump opens only %v: the attack is blind", before)
		}

		s := newTestService(t, db, sealKeySecret) // the first start after the upgrade
		after, _, _ := attack(t, db, inst)
		if len(after) > 0 {
			t.Errorf("after the migration a dump of the database alone opens: %v", after)
		}
		noPrivateKeys(t, db)
		k, err := db.ActiveLicensingKey(ctx, licensing.KeySecret)
		if err != nil || !strings.HasPrefix(k.Material, licensing.SealedSecretPrefix) {
			t.Errorf("legacy secret row: %q, %v; want it sealed", k.Material, err)
		}
		check(t, s, db, inst)
		// A second start finds it migrated and changes nothing.
		sealedBefore, _ := sealedValues(t, db, inst)
		check(t, newTestService(t, db, sealKeySecret), db, inst)
		sealedAfter, _ := sealedValues(t, db, inst)
		for i := range sealedBefore {
			if sealedBefore[i].sealed != sealedAfter[i].sealed && sealedBefore[i].what != "stored answer" {
				t.Errorf("%s sealed again on the second start", sealedBefore[i].what)
			}
		}
		// Another seal key fails to start, naming the cause.
		cfg := licensing.DefaultConfig()
		cfg.Secret = []byte("another-installation-seal-key-32")
		if _, err := licensing.New(ctx, db, cfg); err == nil || !strings.Contains(err.Error(), "seal key") {
			t.Errorf("start with another seal key: %v, want an error naming the seal key", err)
		}
	})
}

// TestLegacyMigrationInterrupted stops the migration at several points,
// as a crash would, and shows each leaves the database as it was, and the
// next start completes it. The dialects run one after the other: the hook
// is the package's.
func TestLegacyMigrationInterrupted(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(string(dialect), func(t *testing.T) { testLegacyMigrationInterrupted(t, dialect) })
	}
}

func testLegacyMigrationInterrupted(t *testing.T, dialect store.Dialect) {
	{
		ctx := t.Context()
		db := storetest.Open(t, dialect)
		legacy, _ := newLegacyService(t, db)
		inst := build(t, legacy)
		// A second tenant, so that there is more than one value of each kind.
		inst2 := build2(t, legacy)
		dumpBefore := strings.Join(storetest.Dump(t, db), "\n")

		crash := errors.New("crash")
		for _, after := range []int{0, 1, 3, 5} {
			n := 0
			licensing.SetResealHook(func(d licensing.Store, _ licensing.SealedValue) error {
				if d != db {
					return nil
				}
				if n == after {
					return crash
				}
				n++
				return nil
			})
			cfg := licensing.DefaultConfig()
			cfg.Secret = sealKeySecret
			if _, err := licensing.New(ctx, db, cfg); !errors.Is(err, crash) {
				t.Fatalf("interrupted after %d values: %v", after, err)
			}
			if got := strings.Join(storetest.Dump(t, db), "\n"); got != dumpBefore {
				t.Fatalf("interrupted after %d values: the database changed", after)
			}
		}
		licensing.SetResealHook(nil)
		s := newTestService(t, db, sealKeySecret)
		check(t, s, db, inst)
		check(t, s, db, inst2)
		if opened, _, _ := attack(t, db, inst); len(opened) > 0 {
			t.Errorf("after the completed migration a dump opens: %v", opened)
		}
	}
}

// build2 adds a second tenant with its own keys and webhook to an
// installation that build made.
func build2(t *testing.T, s *licensing.Service) installation {
	t.Helper()
	ctx := t.Context()
	tn, err := s.CreateTenant(ctx, "Globex")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := s.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: 5, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OfflineKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wh, err := s.CreateWebhook(ctx, licensing.NewWebhook{TenantID: tn.ID, URL: "https://hooks.example.com/globex", HMAC: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.WebhookKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	g, nonce, err := s.Activate(ctx, licensing.ActivateRequest{TenantID: tn.ID, ProductID: "com.example.app", ActivationCode: ent.ActivationCode, SeatID: "seat-1"})
	if err != nil {
		t.Fatal(err)
	}
	req := licensing.CallRequest{TenantID: tn.ID, Token: g.AccessToken, Nonce: nonce, IdempotencyKey: "refresh-1", Request: []byte("POST /api/v1/activation/refresh")}
	ans, err := s.Refresh(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return installation{tenantID: tn.ID, code: ent.ActivationCode, webhookID: wh.ID, hmacSecret: wh.Secret, webhookPublic: pub, act: req, replay: ans}
}
