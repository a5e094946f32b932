package licensing

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// sealKeySecret stands for the secret the server derives from its seal
// key, which is never in the database.
var sealKeySecret = []byte("the-secret-derived-from-seal.key")

func newTestService(t *testing.T, db *store.DB, secret []byte) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Secret = secret
	cfg.Logger = storetest.Logger(t)
	s, err := New(t.Context(), db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newLegacyService is the service as it was before the secret left the
// database: a random secret stored in licensing_keys in the clear, every
// key derived from it (what New did then, which legacyKeyring keeps).
func newLegacyService(t *testing.T, db *store.DB) (*Service, []byte) {
	t.Helper()
	legacy := randomBytes(32)
	if _, err := db.EnsureLicensingKey(t.Context(), store.LicensingKey{ID: "secret-legacy", Kind: store.LicensingKeySecret,
		Material: base64.RawURLEncoding.EncodeToString(legacy)}); err != nil {
		t.Fatal(err)
	}
	s := &Service{db: db, cfg: DefaultConfig(), log: storetest.Logger(t), now: time.Now, kr: legacyKeyring(legacy)}
	s.hooks = newHookState(s.kr.hooks, s.cfg.Webhooks)
	// Its signing key, a PEM in the clear.
	priv, material, err := keys.NewP256()
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.EnsureLicensingKey(t.Context(), store.LicensingKey{ID: "lic-legacy", Kind: store.LicensingKeySigning, Material: material})
	if err != nil || k.Material != material {
		t.Fatalf("legacy signing key: %v", err)
	}
	if s.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType(tokenType)); err != nil {
		t.Fatal(err)
	}
	s.keys = map[string]*ecdsa.PublicKey{k.ID: &priv.PublicKey}
	return s, legacy
}

// installation is what a test builds and then checks still works.
type installation struct {
	tenantID, code string
	webhookID      string
	hmacSecret     string // whsec_…
	webhookPublic  string // whpk_…
	act            CallRequest
	replay         Answer // the stored answer of act
}

func build(t *testing.T, s *Service) installation {
	t.Helper()
	ctx := t.Context()
	tn, err := s.CreateTenant(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProduct(ctx, "com.example.app", "App"); err != nil {
		t.Fatal(err)
	}
	ent, err := s.CreateEntitlement(ctx, NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: 5, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OfflineKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wh, err := s.CreateWebhook(ctx, NewWebhook{TenantID: tn.ID, URL: "https://hooks.example.com/licensing", HMAC: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.WebhookKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	g, nonce, err := s.Activate(ctx, ActivateRequest{TenantID: tn.ID, ProductID: "com.example.app", ActivationCode: ent.ActivationCode, SeatID: "seat-1"})
	if err != nil {
		t.Fatal(err)
	}
	req := CallRequest{TenantID: tn.ID, Token: g.AccessToken, Nonce: nonce, IdempotencyKey: "refresh-1", Request: []byte("POST /api/v1/activation/refresh")}
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
func check(t *testing.T, s *Service, inst installation) {
	t.Helper()
	ctx := t.Context()
	if _, _, err := s.Activate(ctx, ActivateRequest{TenantID: inst.tenantID, ProductID: "com.example.app", ActivationCode: inst.code, SeatID: "seat-2"}); err != nil {
		t.Errorf("activate with the code made before: %v", err)
	}
	ans, err := s.Refresh(ctx, inst.act)
	if err != nil {
		t.Errorf("replay of the stored answer: %v", err)
	} else if !ans.Replayed || !bytes.Equal(ans.Body, inst.replay.Body) || ans.Nonce != inst.replay.Nonce {
		t.Errorf("replay: replayed %v, same body %v, same nonce %v", ans.Replayed, bytes.Equal(ans.Body, inst.replay.Body), ans.Nonce == inst.replay.Nonce)
	}
	keys, err := s.db.OfflineKeys(ctx, inst.tenantID)
	if err != nil || len(keys) == 0 {
		t.Fatalf("offline keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		priv, err := s.openOfflineKey(k)
		if err != nil {
			t.Errorf("offline key %s: %v", k.Kind, err)
			continue
		}
		var pub []byte
		switch k.Kind {
		case store.OfflineKeyEd25519:
			sk := ed25519.NewKeyFromSeed(priv)
			pub = sk.Public().(ed25519.PublicKey)
			if !ed25519.Verify(pub, []byte("license"), ed25519.Sign(sk, []byte("license"))) {
				t.Errorf("offline signing key does not sign")
			}
		case store.OfflineKeyX25519:
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
	priv, pub, err := s.tenantKey(ctx, inst.tenantID)
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
	w, err := s.db.GetLicenseWebhook(ctx, inst.tenantID, inst.webhookID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.hooks.openHook(w.Secret, secretAAD(w.ID))
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
	open              func(kr keyring) sealer
}

func sealedValues(t *testing.T, db *store.DB, inst installation) (vals []sealedInDump, codeHash string) {
	t.Helper()
	ctx := t.Context()
	keys, err := db.OfflineKeys(ctx, inst.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		vals = append(vals, sealedInDump{"offline " + k.Kind + " key", k.SealedPrivate, offlineKeyAAD(k), func(kr keyring) sealer { return kr.offline }})
	}
	wk, err := db.GetWebhookKey(ctx, inst.tenantID)
	if err != nil {
		t.Fatal(err)
	}
	vals = append(vals, sealedInDump{"webhook key", wk.PrivateKey, tenantKeyAAD(inst.tenantID), func(kr keyring) sealer { return kr.hooks }})
	w, err := db.GetLicenseWebhook(ctx, inst.tenantID, inst.webhookID)
	if err != nil {
		t.Fatal(err)
	}
	vals = append(vals, sealedInDump{"webhook secret", w.Secret, secretAAD(w.ID), func(kr keyring) sealer { return kr.hooks }})
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
		vals = append(vals, sealedInDump{"stored answer", sealed, act + "\x00" + kh, func(kr keyring) sealer { return kr.answers }})
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
	norm, _ := NormalizeCode(code)
	rings := []keyring{}
	if len(c) > 0 {
		rings = append(rings, newKeyring(c), legacyKeyring(c))
	}
	for _, kr := range rings {
		for _, key := range [][]byte{kr.code, c} {
			if equalHash(keyedHash(key, norm), codeHash) {
				got = append(got, "activation code hash")
			}
		}
		for _, v := range vals {
			if _, err := v.open(kr).open(v.sealed, v.aad); err == nil {
				got = append(got, v.what)
			}
		}
	}
	if len(c) == 32 {
		direct := newSealer(c)
		for _, v := range vals {
			if _, err := direct.open(v.sealed, v.aad); err == nil {
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
		if ks, _ := db.ListLicensingKeys(t.Context(), store.LicensingKeySecret); len(ks) != 0 {
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
		check(t, newTestService(t, db, sealKeySecret), inst)
		// Another installation's secret does not start, and says why.
		cfg := DefaultConfig()
		cfg.Secret = []byte("another-installation-seal-key-32")
		if _, err := New(t.Context(), db, cfg); err == nil || !strings.Contains(err.Error(), "seal key") {
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
		k, err := db.ActiveLicensingKey(ctx, store.LicensingKeySecret)
		if err != nil || !strings.HasPrefix(k.Material, sealedSecretPrefix) {
			t.Errorf("legacy secret row: %q, %v; want it sealed", k.Material, err)
		}
		check(t, s, inst)
		// A second start finds it migrated and changes nothing.
		sealedBefore, _ := sealedValues(t, db, inst)
		check(t, newTestService(t, db, sealKeySecret), inst)
		sealedAfter, _ := sealedValues(t, db, inst)
		for i := range sealedBefore {
			if sealedBefore[i].sealed != sealedAfter[i].sealed && sealedBefore[i].what != "stored answer" {
				t.Errorf("%s sealed again on the second start", sealedBefore[i].what)
			}
		}
		// Another seal key fails to start, naming the cause.
		cfg := DefaultConfig()
		cfg.Secret = []byte("another-installation-seal-key-32")
		if _, err := New(ctx, db, cfg); err == nil || !strings.Contains(err.Error(), "seal key") {
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
			hook := func(d *store.DB, _ store.SealedValue) error {
				if d != db {
					return nil
				}
				if n == after {
					return crash
				}
				n++
				return nil
			}
			resealHook.Store(&hook)
			cfg := DefaultConfig()
			cfg.Secret = sealKeySecret
			if _, err := New(ctx, db, cfg); !errors.Is(err, crash) {
				t.Fatalf("interrupted after %d values: %v", after, err)
			}
			if got := strings.Join(storetest.Dump(t, db), "\n"); got != dumpBefore {
				t.Fatalf("interrupted after %d values: the database changed", after)
			}
		}
		resealHook.Store(nil)
		s := newTestService(t, db, sealKeySecret)
		check(t, s, inst)
		check(t, s, inst2)
		if opened, _, _ := attack(t, db, inst); len(opened) > 0 {
			t.Errorf("after the completed migration a dump opens: %v", opened)
		}
	}
}

// build2 adds a second tenant with its own keys and webhook to an
// installation that build made.
func build2(t *testing.T, s *Service) installation {
	t.Helper()
	ctx := t.Context()
	tn, err := s.CreateTenant(ctx, "Globex")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := s.CreateEntitlement(ctx, NewEntitlement{TenantID: tn.ID, ProductID: "com.example.app", Seats: 5, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OfflineKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	wh, err := s.CreateWebhook(ctx, NewWebhook{TenantID: tn.ID, URL: "https://hooks.example.com/globex", HMAC: true})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.WebhookKey(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	g, nonce, err := s.Activate(ctx, ActivateRequest{TenantID: tn.ID, ProductID: "com.example.app", ActivationCode: ent.ActivationCode, SeatID: "seat-1"})
	if err != nil {
		t.Fatal(err)
	}
	req := CallRequest{TenantID: tn.ID, Token: g.AccessToken, Nonce: nonce, IdempotencyKey: "refresh-1", Request: []byte("POST /api/v1/activation/refresh")}
	ans, err := s.Refresh(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return installation{tenantID: tn.ID, code: ent.ActivationCode, webhookID: wh.ID, hmacSecret: wh.Secret, webhookPublic: pub, act: req, replay: ans}
}
