package reports_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports"
)

func sealKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func newRing(t *testing.T, db reports.KeyStore, key []byte) *reports.KeyRing {
	t.Helper()
	r, err := reports.NewKeyRing(db, key)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func kid(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	id, err := keys.Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestKeyRingSealsPrivateKey: the first use makes one key, which a later
// key ring on the same seal key opens; no value of any row holds the
// private key, as PEM or as its scalar in any encoding; another
// installation's seal key does not open it.
func TestKeyRingSealsPrivateKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		key := sealKey()
		priv, err := newRing(t, db, key).SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		again, err := newRing(t, db, key).SigningKey(ctx) // a restarted process
		if err != nil {
			t.Fatal(err)
		}
		if !again.Equal(priv) {
			t.Fatal("a new key ring on the same seal key made another key instead of opening the stored one")
		}
		ks, err := newRing(t, db, key).Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != 1 || ks[0].ID != kid(t, &priv.PublicKey) || !ks[0].Current {
			t.Fatalf("keys after first use = %+v, want the one current key %s", ks, kid(t, &priv.PublicKey))
		}

		d, err := priv.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		dump := storetest.Dump(t, db)
		for _, v := range dump {
			if strings.Contains(v, "PRIVATE KEY") {
				t.Errorf("a row holds a PEM private key: %.60q", v)
			}
		}
		for _, b := range storetest.ByteStrings(dump) {
			if bytes.Contains(b, d) {
				t.Fatalf("a row holds the private key's scalar: %.60q", b)
			}
		}

		_, err = newRing(t, db, sealKey()).SigningKey(ctx)
		if !errors.Is(err, reports.ErrKeyDoesNotOpen) {
			t.Fatalf("another seal key: err = %v, want ErrKeyDoesNotOpen", err)
		}
		if !strings.Contains(err.Error(), ks[0].ID) {
			t.Errorf("the error %q does not name the key", err)
		}
	})
}

// TestKeyRingRotate: after a rotation the new key signs, the old one is
// still published (so what it signed verifies) and its private half is
// gone from the store.
func TestKeyRingRotate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)
		ring := newRing(t, db, sealKey())
		old, err := ring.SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte("report"))
		sig, err := ecdsa.SignASN1(rand.Reader, old, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		info, err := ring.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := ring.SigningKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kid(t, &cur.PublicKey) != info.ID || cur.Equal(old) {
			t.Fatalf("after Rotate the signing key is %s, want the new key %s", kid(t, &cur.PublicKey), info.ID)
		}
		pubs, err := ring.PublicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pubs) != 2 || kid(t, pubs[0]) != info.ID || kid(t, pubs[1]) != kid(t, &old.PublicKey) {
			t.Fatalf("public keys after Rotate: %d keys, want the new one then the old one", len(pubs))
		}
		if !ecdsa.VerifyASN1(pubs[1], digest[:], sig) {
			t.Error("the old key's signature does not verify with the published old key")
		}
		ks, err := ring.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != 2 || !ks[0].Current || ks[1].Current || ks[1].RetiredAt == nil {
			t.Fatalf("keys after Rotate = %+v, want the new current key then the retired one", ks)
		}
		stored, err := db.ListReportKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stored[1].SealedPrivate != "" {
			t.Error("the retired key's sealed private key is still stored")
		}
	})
}

// TestKeyRingConcurrentFirstUse: processes starting at once on an empty
// store agree on one key; concurrent rotations each leave one current key.
func TestKeyRingConcurrentFirstUse(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		dsn := storetest.DSN(t, dialect)
		key := sealKey()
		const procs, calls = 3, 4
		rings := make([]*reports.KeyRing, procs)
		for i := range rings {
			rings[i] = newRing(t, storetest.OpenDSN(t, dsn), key)
		}
		ids := make(chan string, procs*calls)
		var wg sync.WaitGroup
		for _, r := range rings {
			for range calls {
				wg.Go(func() {
					priv, err := r.SigningKey(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					ids <- kid(t, &priv.PublicKey)
				})
			}
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		if len(seen) != 1 {
			t.Fatalf("concurrent first use made %d keys, want 1", len(seen))
		}
		ks, err := rings[0].Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != 1 {
			t.Fatalf("%d keys stored, want 1", len(ks))
		}

		for _, r := range rings {
			wg.Go(func() {
				if _, err := r.Rotate(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ks, err = rings[0].Keys(ctx); err != nil {
			t.Fatal(err)
		}
		current := 0
		for _, k := range ks {
			if k.Current {
				current++
			}
		}
		if len(ks) != 1+procs || current != 1 {
			t.Fatalf("after %d concurrent rotations: %d keys, %d current; want %d and 1", procs, len(ks), current, 1+procs)
		}
	})
}
