package offline_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/licensing/offline"
)

// server is the server side of the protocol, made of the package's own
// functions and real keys: what licensing.Service does around them.
type server struct {
	t    testing.TB
	sk   *offline.ServerKey
	kems map[string]hpke.PrivateKey // by key ID
	sign ed25519.PrivateKey
}

func newServer(t testing.TB) *server {
	t.Helper()
	kdfID, aeadID := offline.SuiteIDs()
	s := &server{t: t, kems: map[string]hpke.PrivateKey{},
		sk: &offline.ServerKey{Version: offline.Version, TenantID: "tenant-1", KDFID: kdfID, AEADID: aeadID}}
	for _, kem := range []hpke.KEM{hpke.DHKEM(ecdhX25519()), hpke.MLKEM768X25519()} {
		priv, err := kem.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		name, err := offline.KEMName(kem.ID())
		if err != nil {
			t.Fatal(err)
		}
		id := "key-" + name
		s.kems[id] = priv
		s.sk.KEMs = append(s.sk.KEMs, offline.KeyInfo{KEM: name, KEMID: kem.ID(), KeyID: id, PublicKey: priv.PublicKey().Bytes()})
	}
	pub, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.sign = sign
	s.sk.Signing = offline.KeyInfo{Alg: "Ed25519", KeyID: "sig-1", PublicKey: pub}
	return s
}

// serve opens the request and answers a license issued at now.
func (s *server) serve(env *offline.Envelope, now time.Time) (*offline.Request, *offline.Envelope, error) {
	priv, ok := s.kems[env.KeyID]
	if !ok {
		return nil, nil, errors.New("unknown key")
	}
	req, err := offline.OpenRequest(env, priv, env.KeyID)
	if err != nil {
		return nil, nil, err
	}
	kind := offline.KindLicense
	if req.Type == offline.Deactivate {
		kind = offline.KindDeactivation
	}
	lic := offline.License{Kind: kind, ActivationID: "act-1", TenantID: req.TenantID, ProductID: req.ProductID, EntitlementID: "ent-1",
		SeatID: req.SeatID, Fingerprint: req.Fingerprint, Features: map[string]offline.Feature{"export": {Kind: "boolean"}},
		IssuedAt: now, LeaseExpiresAt: now.Add(24 * time.Hour), LastSeen: now}
	ans, err := offline.SealAnswer(req, env, lic, s.sign, s.sk.Signing.KeyID)
	return req, ans, err
}

func params() offline.Params {
	return offline.Params{ProductID: "com.example.app", ActivationCode: "ABCD-EFGH-JKLM-NPQR", SeatID: "host-1", Fingerprint: "fp-1"}
}

func TestRoundTrip(t *testing.T) {
	for _, kem := range []string{offline.KEMX25519, offline.KEMMLKEM768X25519} {
		t.Run(kem, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			now := time.Now().UTC().Truncate(time.Second)
			p := params()
			p.KEM, p.Now = kem, now
			env, ck, err := offline.NewRequest(s.sk, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := env.KeyID; got != "key-"+kem {
				t.Errorf("request sealed to %q, want the %s key", got, kem)
			}
			wantKEM, _ := offline.KEMID(kem)
			if env.KEM != wantKEM {
				t.Errorf("envelope KEM 0x%04x, want 0x%04x", env.KEM, wantKEM)
			}
			// Through JSON, as files carry it.
			env, err = offline.ParseEnvelope(env.Marshal(), offline.PurposeRequest)
			if err != nil {
				t.Fatal(err)
			}
			req, ans, err := s.serve(env, now)
			if err != nil {
				t.Fatal(err)
			}
			if req.Type != offline.Activate || req.ActivationCode != p.ActivationCode || req.SeatID != "host-1" || req.TenantID != "tenant-1" {
				t.Errorf("server opened %+v", req)
			}
			if err := req.CheckTime(now.Add(time.Hour)); err != nil {
				t.Errorf("a request an hour old refused: %v", err)
			}
			ans, err = offline.ParseEnvelope(ans.Marshal(), offline.PurposeAnswer)
			if err != nil {
				t.Fatal(err)
			}
			st := &offline.State{}
			lic, err := offline.OpenAt(ans, ck, s.sk, st, now.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if lic.ActivationID != "act-1" || lic.RequestID != req.RequestID || lic.Features["export"].Kind != "boolean" {
				t.Errorf("license %+v", lic)
			}
			if ck.ActivationID != "act-1" {
				t.Errorf("client key activation %q, want act-1", ck.ActivationID)
			}
			if !st.MaxSeen.Equal(now.Add(time.Minute)) {
				t.Errorf("state max_seen %v, want %v", st.MaxSeen, now.Add(time.Minute))
			}

			// A refresh with the same key carries the activation and the
			// same proof; a new key's proof differs.
			p2 := offline.Params{Type: offline.Refresh, ProductID: p.ProductID, SeatID: "host-1", Fingerprint: "fp-1", Now: now}
			env2, ck2, err := offline.NewRequest(s.sk, p2, ck)
			if err != nil {
				t.Fatal(err)
			}
			req2, _, err := s.serve(env2, now)
			if err != nil {
				t.Fatal(err)
			}
			if req2.ActivationID != "act-1" || req2.Proof != req.Proof || req2.RequestID == req.RequestID || ck2.Pending.RequestID != req2.RequestID {
				t.Errorf("refresh request %+v, activation request %+v", req2, req)
			}
			_, req3, err := s.serveNew(p, now)
			if err != nil {
				t.Fatal(err)
			}
			if req3.Proof == req.Proof {
				t.Error("two client keys made the same proof")
			}
		})
	}
}

func (s *server) serveNew(p offline.Params, now time.Time) (*offline.ClientKey, *offline.Request, error) {
	env, ck, err := offline.NewRequest(s.sk, p, nil)
	if err != nil {
		return nil, nil, err
	}
	req, _, err := s.serve(env, now)
	return ck, req, err
}

func TestTamperedRequest(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	now := time.Now()
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i%len(c)] ^= 1; return c }
	cases := map[string]func(e *offline.Envelope){
		"ciphertext":   func(e *offline.Envelope) { e.Ciphertext = flip(e.Ciphertext, 7) },
		"last byte":    func(e *offline.Envelope) { e.Ciphertext = flip(e.Ciphertext, len(e.Ciphertext)-1) },
		"enc":          func(e *offline.Envelope) { e.Enc = flip(e.Enc, 3) },
		"key id":       func(e *offline.Envelope) { e.KeyID = "key-" + offline.KEMMLKEM768X25519 },
		"kem id":       func(e *offline.Envelope) { e.KEM, _ = offline.KEMID(offline.KEMMLKEM768X25519) },
		"purpose":      func(e *offline.Envelope) { e.Purpose = offline.PurposeAnswer },
		"version":      func(e *offline.Envelope) { e.Version = 2 },
		"truncated ct": func(e *offline.Envelope) { e.Ciphertext = e.Ciphertext[:len(e.Ciphertext)-1] },
	}
	for name, tamper := range cases {
		env, _, err := offline.NewRequest(s.sk, params(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tamper(env)
		priv := s.kems[env.KeyID]
		if priv == nil {
			priv = s.kems["key-x25519"]
		}
		_, err = offline.OpenRequest(env, priv, env.KeyID)
		if !errors.Is(err, offline.ErrTampered) && !errors.Is(err, offline.ErrMalformed) {
			t.Errorf("%s: OpenRequest = %v, want ErrTampered or ErrMalformed", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// The same envelope, opened with the key it names, works.
	env, _, _ := offline.NewRequest(s.sk, params(), nil)
	if _, _, err := s.serve(env, now); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedAnswer(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	now := time.Now().UTC()
	env, ck, err := offline.NewRequest(s.sk, params(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req, ans, err := s.serve(env, now)
	if err != nil {
		t.Fatal(err)
	}
	flipped := *ans
	flipped.Ciphertext = append([]byte(nil), ans.Ciphertext...)
	flipped.Ciphertext[10] ^= 0x80
	if _, err := offline.OpenAt(&flipped, ck, s.sk, nil, now); !errors.Is(err, offline.ErrTampered) {
		t.Errorf("flipped ciphertext: %v, want ErrTampered", err)
	}

	// A license signed by another key, sealed properly to the client.
	other := newServer(t)
	other.sk.TenantID = s.sk.TenantID
	forged, err := offline.SealAnswer(req, env, offline.License{Kind: offline.KindLicense, TenantID: req.TenantID, ProductID: req.ProductID,
		SeatID: req.SeatID, Fingerprint: req.Fingerprint, IssuedAt: now, LeaseExpiresAt: now.Add(time.Hour), LastSeen: now},
		other.sign, s.sk.Signing.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := offline.OpenAt(forged, ck, s.sk, nil, now); !errors.Is(err, offline.ErrTampered) {
		t.Errorf("forged signature: %v, want ErrTampered", err)
	}

	// Another client's key cannot open it.
	_, ck2, err := offline.NewRequest(s.sk, params(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := offline.OpenAt(ans, ck2, s.sk, nil, now); !errors.Is(err, offline.ErrTampered) {
		t.Errorf("other client's key: %v, want ErrTampered", err)
	}

	// A genuine answer to an older request of the same key is refused.
	_, ck3, err := offline.NewRequest(s.sk, params(), ck)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := offline.OpenAt(ans, ck3, s.sk, nil, now); !errors.Is(err, offline.ErrMismatch) {
		t.Errorf("answer to an older request: %v, want ErrMismatch", err)
	}

	// The untouched answer opens.
	if _, err := offline.OpenAt(ans, ck, s.sk, nil, now); err != nil {
		t.Errorf("genuine answer: %v", err)
	}
}

func TestClockRollbackAndLease(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	issued := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	p := params()
	p.Now = issued
	env, ck, err := offline.NewRequest(s.sk, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ans, err := s.serve(env, issued)
	if err != nil {
		t.Fatal(err)
	}
	open := func(st *offline.State, now time.Time) error {
		c := *ck
		_, err := offline.OpenAt(ans, &c, s.sk, st, now)
		return err
	}

	// Behind the server's last-seen time by more than the tolerance.
	if err := open(nil, issued.Add(-time.Hour)); !errors.Is(err, offline.ErrClockRollback) {
		t.Errorf("clock an hour behind the server: %v, want ErrClockRollback", err)
	}
	if err := open(nil, issued.Add(-offline.ClockTolerance/2)); err != nil {
		t.Errorf("clock within the tolerance: %v", err)
	}

	// Seen at 18:00, then the clock goes back to 14:00.
	st := &offline.State{}
	if err := open(st, issued.Add(6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := open(st, issued.Add(2*time.Hour)); !errors.Is(err, offline.ErrClockRollback) {
		t.Errorf("clock turned back 4h: %v, want ErrClockRollback", err)
	}
	if !st.MaxSeen.Equal(issued.Add(6 * time.Hour)) {
		t.Errorf("a refused check moved the state to %v", st.MaxSeen)
	}

	// Through the state file.
	path := filepath.Join(t.TempDir(), "state.json")
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	st2, err := offline.LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := open(st2, issued.Add(3*time.Hour)); !errors.Is(err, offline.ErrClockRollback) {
		t.Errorf("rollback across the state file: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, %v; want 0600", fi.Mode(), err)
	}

	// The lease ran out (24h).
	if err := open(st, issued.Add(25*time.Hour)); !errors.Is(err, offline.ErrLeaseExpired) {
		t.Errorf("after the lease: %v, want ErrLeaseExpired", err)
	}
}

func TestStaleRequest(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	now := time.Now().UTC()
	p := params()
	p.Now = now.Add(-offline.RequestMaxAge - time.Minute)
	env, _, err := offline.NewRequest(s.sk, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _, err := s.serve(env, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckTime(now); !errors.Is(err, offline.ErrStale) {
		t.Errorf("old request: %v, want ErrStale", err)
	}
	p.Now = now.Add(time.Hour)
	env, _, _ = offline.NewRequest(s.sk, p, nil)
	req, _, _ = s.serve(env, now)
	if err := req.CheckTime(now); !errors.Is(err, offline.ErrStale) {
		t.Errorf("request from the future: %v, want ErrStale", err)
	}
}

func TestFilesAndValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	dir := t.TempDir()
	_, ck, err := offline.NewRequest(s.sk, params(), nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "client.key")
	if err := offline.WriteClientKey(path, ck); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client key mode %v, %v; want 0600", fi.Mode(), err)
	}
	got, err := offline.ReadClientKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pending.RequestID != ck.Pending.RequestID || string(got.PrivateKey) != string(ck.PrivateKey) {
		t.Errorf("client key read back %+v", got)
	}

	for name, p := range map[string]offline.Params{
		"no code":     {ProductID: "p", SeatID: "s"},
		"no seat":     {ProductID: "p", ActivationCode: "X"},
		"bad type":    {Type: "renew", ProductID: "p", SeatID: "s"},
		"refresh id":  {Type: offline.Refresh, ProductID: "p", SeatID: "s"},
		"bad kem":     {ProductID: "p", SeatID: "s", ActivationCode: "X", KEM: "p256"},
		"long seat":   {ProductID: "p", SeatID: string(make([]byte, 300)), ActivationCode: "X"},
		"no product":  {SeatID: "s", ActivationCode: "X"},
		"fingerprint": {ProductID: "p", SeatID: "s", ActivationCode: "X", Fingerprint: string(make([]byte, 600))},
	} {
		if _, _, err := offline.NewRequest(s.sk, p, nil); !errors.Is(err, offline.ErrMalformed) {
			t.Errorf("%s: NewRequest = %v, want ErrMalformed", name, err)
		}
	}

	big := make([]byte, offline.MaxEnvelope+1)
	if _, err := offline.ParseEnvelope(big, offline.PurposeRequest); !errors.Is(err, offline.ErrMalformed) {
		t.Errorf("oversized envelope: %v", err)
	}
	if _, err := offline.ParseEnvelope([]byte(`{"version":1,"extra":1}`), offline.PurposeRequest); !errors.Is(err, offline.ErrMalformed) {
		t.Errorf("unknown field: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := offline.ReadEnvelope(filepath.Join(dir, "big"), offline.PurposeRequest); !errors.Is(err, offline.ErrMalformed) {
		t.Errorf("oversized file: %v", err)
	}
}

func ecdhX25519() ecdh.Curve { return ecdh.X25519() }

// BenchmarkRoundTrip measures the cryptography of one offline activation:
// the client's request, the server's open and signed answer, the client's
// verification.
func BenchmarkRoundTrip(b *testing.B) {
	for _, kem := range []string{offline.KEMX25519, offline.KEMMLKEM768X25519} {
		b.Run(kem, func(b *testing.B) {
			s := newServer(b)
			p := params()
			p.KEM = kem
			for b.Loop() {
				now := time.Now()
				p.Now = now
				env, ck, err := offline.NewRequest(s.sk, p, nil)
				if err != nil {
					b.Fatal(err)
				}
				_, ans, err := s.serve(env, now)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := offline.OpenAt(ans, ck, s.sk, nil, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
