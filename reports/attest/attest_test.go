package attest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/vigil-sec/vigil/internal/tooltest"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/attest"
	"github.com/vigil-sec/vigil/scanner"
)

// privatePEM holds the PKCS#8 PEM of the keys newSigner made, by key ID.
var privatePEM sync.Map

func newSigner(t *testing.T) *attest.Signer {
	t.Helper()
	s, text, err := attest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	privatePEM.Store(s.KeyID(), text)
	return s
}

func signerPEM(t *testing.T, s *attest.Signer) string {
	t.Helper()
	text, ok := privatePEM.Load(s.KeyID())
	if !ok {
		t.Fatal("the signer was not made by newSigner")
	}
	return text.(string)
}

func privateJWK(t *testing.T, s *attest.Signer) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(signerPEM(t, s)))
	priv, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: s.KeyID()}}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func digest(s string) map[string]string {
	sum := sha256.Sum256([]byte(s))
	return map[string]string{"sha256": hex.EncodeToString(sum[:])}
}

func testReport(keyID string) *attest.AuditReport {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &attest.AuditReport{
		Release:   attest.Release{Product: "prod-1", ProductName: "Widget", Version: "1.4.0", ReleasedAt: at},
		Recipient: attest.Recipient{Tenant: "acme", Name: "ACME Corp"},
		Ticket:    "T-42",
		Scans: []attest.Scan{{
			ID:        "scan-1",
			Target:    attest.Target{Kind: attest.TargetCommit, Project: "app", Repository: "https://git.example.com/app.git", Commit: strings.Repeat("a", 40)},
			Engines:   []attest.Engine{{ID: "sast", Version: "v2.30.0"}, {ID: "sbom", Version: "v1.57.1"}},
			StartedAt: at.Add(-time.Hour), FinishedAt: at.Add(-50 * time.Minute),
		}},
		SigningKeyID: keyID,
	}
}

func testStatement(t *testing.T, keyID string) *attest.Statement {
	t.Helper()
	st, err := attest.NewStatement([]attest.Subject{
		{Name: "a.txt", Digest: digest("a")},
		{Name: "b.txt", Digest: digest("b"), Annotations: &attest.Annotations{Size: 1}},
	}, attest.PredicateType, testReport(keyID))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sign(t *testing.T, s *attest.Signer) *attest.Envelope {
	t.Helper()
	env, err := s.Sign(context.Background(), testStatement(t, s.KeyID()))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	old, cur := newSigner(t), newSigner(t)
	env := sign(t, cur)
	if env.PayloadType != attest.PayloadType || len(env.Signatures) != 1 || env.Signatures[0].KeyID != cur.KeyID() {
		t.Fatalf("envelope = %+v", env)
	}
	// An older key in the set does not get in the way.
	v, err := attest.Verify(context.Background(), env, []attest.PublicKey{old.PublicKey(), cur.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != cur.KeyID() {
		t.Errorf("KeyID = %s, want %s", v.KeyID, cur.KeyID())
	}
	got, err := v.Statement.AuditReport()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, testReport(cur.KeyID())); diff != "" {
		t.Errorf("predicate (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(v.Statement, testStatement(t, cur.KeyID())); diff != "" {
		t.Errorf("statement (-got +want):\n%s", diff)
	}
}

// TestStatementShape pins the JSON of the statement against the in-toto
// Statement v1 field names.
func TestStatementShape(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	env := sign(t, s)
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(body, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["_type"] != "https://in-toto.io/Statement/v1" || generic["predicateType"] != "https://vigil.dev/attestation/audit-report/v1" {
		t.Errorf("statement = %s", body)
	}
	subj := generic["subject"].([]any)[0].(map[string]any)
	if subj["name"] != "a.txt" || subj["digest"].(map[string]any)["sha256"] != digest("a")["sha256"] {
		t.Errorf("subject = %v", subj)
	}
	pred := generic["predicate"].(map[string]any)
	for _, k := range []string{"release", "recipient", "ticket", "scans", "signing_key_id"} {
		if _, ok := pred[k]; !ok {
			t.Errorf("the predicate has no %q: %s", k, body)
		}
	}
	if !strings.Contains(string(body), `"released_at":"2026-03-01T12:00:00Z"`) {
		t.Errorf("times are not RFC 3339 UTC: %s", body)
	}
	line, err := attest.MarshalEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(line, '\n') {
		t.Errorf("the envelope is not one line: %s", line)
	}
}

// TestPAE is the test vector of the DSSE protocol (protocol.md).
func TestPAE(t *testing.T) {
	t.Parallel()
	got := string(attest.PAE("http://example.com/HelloWorld", []byte("hello world")))
	if want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"; got != want {
		t.Errorf("PAE = %q, want %q", got, want)
	}
}

func TestSignIsDeterministic(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	a, err := attest.MarshalEnvelope(sign(t, s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.MarshalEnvelope(sign(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two signatures of the same statement differ:\n%s\n%s", a, b)
	}
}

// TestVerifyRefuses: every way to present a signature that is not a good
// one by a trusted key ends in ErrNoTrustedSignature, and a payload that
// is not what was signed never comes back.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	s, other := newSigner(t), newSigner(t)
	trusted := []attest.PublicKey{s.PublicKey()}
	cases := []struct {
		name   string
		tamper func(e *attest.Envelope)
		keys   []attest.PublicKey
		want   error
	}{
		{"payload changed", func(e *attest.Envelope) {
			body, _ := base64.StdEncoding.DecodeString(e.Payload)
			body = bytes.Replace(body, []byte("1.4.0"), []byte("1.4.1"), 1)
			e.Payload = base64.StdEncoding.EncodeToString(body)
		}, trusted, attest.ErrNoTrustedSignature},
		{"signed by another key", func(e *attest.Envelope) { *e = *sign(t, other) }, trusted, attest.ErrNoTrustedSignature},
		{"keyid of a key not given", func(e *attest.Envelope) { e.Signatures[0].KeyID = other.KeyID() }, trusted, attest.ErrNoTrustedSignature},
		{"keyid of another trusted key", func(e *attest.Envelope) { e.Signatures[0].KeyID = other.KeyID() },
			[]attest.PublicKey{s.PublicKey(), other.PublicKey()}, attest.ErrNoTrustedSignature},
		{"no signature", func(e *attest.Envelope) { e.Signatures = nil }, trusted, attest.ErrNoTrustedSignature},
		{"signature not base64", func(e *attest.Envelope) { e.Signatures[0].Sig = "!!" }, trusted, attest.ErrNoTrustedSignature},
		{"signature truncated", func(e *attest.Envelope) {
			sig, _ := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
			e.Signatures[0].Sig = base64.StdEncoding.EncodeToString(sig[:len(sig)-1])
		}, trusted, attest.ErrNoTrustedSignature},
		{"payload type changed", func(e *attest.Envelope) { e.PayloadType = "application/json" }, trusted, attest.ErrMalformed},
		{"payload not base64", func(e *attest.Envelope) { e.Payload = "%%%" }, trusted, attest.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := sign(t, s)
			c.tamper(env)
			v, err := attest.Verify(context.Background(), env, c.keys)
			if !errors.Is(err, c.want) || v != nil {
				t.Errorf("Verify = %v, %v; want %v", v, err, c.want)
			}
		})
	}
}

// TestKeyIDComesFromTheKey: Verify names keys by their thumbprint, not
// by the ID a caller attached.
func TestKeyIDComesFromTheKey(t *testing.T) {
	t.Parallel()
	s, other := newSigner(t), newSigner(t)
	env := sign(t, s)
	mislabelled := attest.PublicKey{ID: other.KeyID(), Key: s.PublicKey().Key}
	v, err := attest.Verify(context.Background(), env, []attest.PublicKey{mislabelled})
	if err != nil || v.KeyID != s.KeyID() {
		t.Errorf("Verify = %+v, %v; want key %s", v, err, s.KeyID())
	}
}

// TestKeyIDIsAHint: DSSE does not authenticate the keyid, so a signature
// without one is tried with every key.
func TestKeyIDIsAHint(t *testing.T) {
	t.Parallel()
	s, other := newSigner(t), newSigner(t)
	env := sign(t, s)
	env.Signatures[0].KeyID = ""
	v, err := attest.Verify(context.Background(), env, []attest.PublicKey{other.PublicKey(), s.PublicKey()})
	if err != nil || v.KeyID != s.KeyID() {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	if _, err := attest.Verify(context.Background(), env, []attest.PublicKey{other.PublicKey()}); !errors.Is(err, attest.ErrNoTrustedSignature) {
		t.Errorf("Verify with another key = %v", err)
	}
}

// TestPayloadTypeIsSigned: a signature made over another payload type
// does not verify once the type is changed to ours.
func TestPayloadTypeIsSigned(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	env := sign(t, s)
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	forged := opensslSign(t, s, attest.PAE("application/json", body))
	env.Signatures[0].Sig = base64.StdEncoding.EncodeToString(forged)
	if _, err := attest.Verify(context.Background(), env, []attest.PublicKey{s.PublicKey()}); !errors.Is(err, attest.ErrNoTrustedSignature) {
		t.Errorf("Verify = %v, want ErrNoTrustedSignature", err)
	}
}

// TestVerifyRefusesBadStatements: a statement signed by the trusted key
// is still refused when it is not a well-formed in-toto statement.
func TestVerifyRefusesBadStatements(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	good := `"subject":[{"name":"a","digest":{"sha256":"` + digest("a")["sha256"] + `"}}],"predicateType":"x","predicate":{}`
	cases := map[string]string{
		"wrong type":        `{"_type":"https://in-toto.io/Statement/v0.1",` + good + `}`,
		"no subject":        `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`,
		"upper-case digest": `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` + strings.ToUpper(digest("a")["sha256"]) + `"}}],"predicateType":"x","predicate":{}}`,
		"sha1 only":         `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha1":"` + strings.Repeat("a", 40) + `"}}],"predicateType":"x","predicate":{}}`,
		"duplicate key":     `{"_type":"https://in-toto.io/Statement/v1",` + good + `,"predicateType":"y"}`,
		"case-folded key":   `{"_type":"https://in-toto.io/Statement/v1",` + good + `,"PredicateType":"y"}`,
		"not JSON":          `{`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := opensslEnvelope(t, s, []byte(body))
			if _, err := attest.Verify(context.Background(), env, []attest.PublicKey{s.PublicKey()}); !errors.Is(err, attest.ErrMalformed) {
				t.Errorf("Verify = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestOpenSSLVerifiesOurSignature: Debian's openssl checks a signature
// Vigil made, over the PAE, with the public key as Vigil publishes it.
func TestOpenSSLVerifiesOurSignature(t *testing.T) {
	t.Parallel()
	openssl := needOpenSSL(t)
	s := newSigner(t)
	env := sign(t, s)
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	dir := t.TempDir()
	keyPEM, err := attest.MarshalPEM(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "key.pem", keyPEM)
	write(t, dir, "sig.der", sig)
	write(t, dir, "pae.bin", attest.PAE(env.PayloadType, body))
	out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", filepath.Join(dir, "key.pem"),
		"-signature", filepath.Join(dir, "sig.der"), filepath.Join(dir, "pae.bin")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	// And it refuses the same signature over a changed payload.
	write(t, dir, "pae.bin", attest.PAE(env.PayloadType, append(body, ' ')))
	if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", filepath.Join(dir, "key.pem"),
		"-signature", filepath.Join(dir, "sig.der"), filepath.Join(dir, "pae.bin")).CombinedOutput(); err == nil {
		t.Fatalf("openssl verified a changed payload:\n%s", out)
	}
}

// TestVerifyAcceptsOpenSSLSignature: an envelope signed by openssl, with
// Vigil's key, verifies: Verify reads the signatures other tools write.
func TestVerifyAcceptsOpenSSLSignature(t *testing.T) {
	t.Parallel()
	s := newSigner(t)
	body, err := json.Marshal(testStatement(t, s.KeyID()))
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.Verify(context.Background(), opensslEnvelope(t, s, body), []attest.PublicKey{s.PublicKey()})
	if err != nil || v.KeyID != s.KeyID() {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
}

func TestPublicKeysRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := newSigner(t).PublicKey(), newSigner(t).PublicKey()
	pemText, err := attest.MarshalPEM(a, b)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := attest.MarshalJWKS(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var one struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &one); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"PEM": pemText, "JWKS": jwks, "one JWK": one.Keys[1]} {
		got, err := attest.ParsePublicKeys(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := []attest.PublicKey{a, b}
		if name == "one JWK" {
			want = want[1:]
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d keys, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID || !got[i].Key.Equal(want[i].Key) {
				t.Errorf("%s: key %d = %s, want %s", name, i, got[i].ID, want[i].ID)
			}
		}
	}
	if !strings.Contains(string(jwks), `"kid":"`+a.ID+`"`) || !strings.Contains(string(jwks), `"alg":"ES256"`) {
		t.Errorf("JWKS = %s", jwks)
	}
}

func TestParsePublicKeysRefuses(t *testing.T) {
	t.Parallel()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkix := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	s := newSigner(t)
	_, privPEM, _ := attest.GenerateKey()
	jwks, _ := attest.MarshalJWKS(s.PublicKey())
	other := newSigner(t).KeyID()
	cases := map[string][]byte{
		"P-384":              pkix(&p384.PublicKey),
		"RSA":                pkix(&rsaKey.PublicKey),
		"private key PEM":    []byte(privPEM),
		"nothing":            []byte("hello"),
		"empty JWKS":         []byte(`{"keys":[]}`),
		"kid not thumbprint": bytes.Replace(jwks, []byte(s.KeyID()), []byte(other), 1),
		"private JWK":        privateJWK(t, s),
		"bad JSON":           []byte(`{"keys":`),
	}
	for name, data := range cases {
		if _, err := attest.ParsePublicKeys(data); !errors.Is(err, attest.ErrBadKey) {
			t.Errorf("%s: ParsePublicKeys = %v, want ErrBadKey", name, err)
		}
	}
}

func TestAuditReportValidate(t *testing.T) {
	t.Parallel()
	if err := testReport("k").Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*attest.AuditReport){
		"no product":         func(r *attest.AuditReport) { r.Release.Product = "" },
		"no version":         func(r *attest.AuditReport) { r.Release.Version = "" },
		"no tenant":          func(r *attest.AuditReport) { r.Recipient.Tenant = "" },
		"commit without sha": func(r *attest.AuditReport) { r.Scans[0].Target.Commit = "" },
		"image without digest": func(r *attest.AuditReport) {
			r.Scans[0].Target = attest.Target{Kind: attest.TargetImage, Repository: "registry.example.com/app"}
		},
		"unknown kind": func(r *attest.AuditReport) { r.Scans[0].Target.Kind = "tarball" },
	} {
		r := testReport("k")
		change(r)
		if err := r.Validate(); err == nil {
			t.Errorf("%s: Validate = nil", name)
		}
	}
}

func TestNewAuditReport(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rel := &reports.Release{
		ProductID: "p1", ProductName: "Product One", Version: "2.0", Created: at,
		Scans: []reports.ReleaseScan{
			{Image: "registry.example.com/app:2.0", Digest: "sha256:" + strings.Repeat("b", 64), PolicyVersion: "1",
				Result: &scanner.Result{StartedAt: at.Add(-time.Hour), FinishedAt: at, Engines: []scanner.EngineRun{{ID: "sbom", Version: "v1.57.1", Seconds: 3}}}},
			{Project: "api", Repository: "https://git.example.com/api.git", Commit: strings.Repeat("a", 40), PolicyVersion: "4",
				Result: &scanner.Result{StartedAt: at.Add(-2 * time.Hour), FinishedAt: at.Add(-time.Hour), Engines: []scanner.EngineRun{{ID: "sast", Version: "v2.30.0"}}}},
		},
	}
	got := attest.NewAuditReport(rel, reports.Recipient{TenantID: "t1", TenantName: "ACME", Ticket: "1042"})
	want := &attest.AuditReport{
		Release:   attest.Release{Product: "p1", ProductName: "Product One", Version: "2.0", ReleasedAt: at},
		Recipient: attest.Recipient{Tenant: "t1", Name: "ACME"},
		Ticket:    "1042",
		Scans: []attest.Scan{ // repositories first, as every document lists them
			{Target: attest.Target{Kind: attest.TargetCommit, Project: "api", Repository: "https://git.example.com/api.git", Commit: strings.Repeat("a", 40)},
				Engines: []attest.Engine{{ID: "sast", Version: "v2.30.0"}}, PolicyVersion: "4", StartedAt: at.Add(-2 * time.Hour), FinishedAt: at.Add(-time.Hour)},
			{Target: attest.Target{Kind: attest.TargetImage, Image: "registry.example.com/app:2.0", Digest: "sha256:" + strings.Repeat("b", 64)},
				Engines: []attest.Engine{{ID: "sbom", Version: "v1.57.1"}}, PolicyVersion: "1", StartedAt: at.Add(-time.Hour), FinishedAt: at},
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("NewAuditReport (-got +want):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
}

func TestAuditReportUTC(t *testing.T) {
	t.Parallel()
	r := testReport("k")
	paris := time.FixedZone("CET", 3600)
	r.Release.ReleasedAt = r.Release.ReleasedAt.In(paris)
	r.Scans[0].StartedAt = r.Scans[0].StartedAt.In(paris)
	u := r.UTC()
	if u.Release.ReleasedAt.Location() != time.UTC || u.Scans[0].StartedAt.Location() != time.UTC {
		t.Errorf("UTC left a zone: %v %v", u.Release.ReleasedAt, u.Scans[0].StartedAt)
	}
	if r.Scans[0].StartedAt.Location() != paris {
		t.Error("UTC changed the original")
	}
}

// opensslSign signs data with the signer's key using openssl, as an
// implementation independent of Vigil's.
func opensslSign(t *testing.T, s *attest.Signer, data []byte) []byte {
	t.Helper()
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	write(t, dir, "key.pem", []byte(signerPEM(t, s)))
	write(t, dir, "data", data)
	out, err := exec.Command(openssl, "dgst", "-sha256", "-sign", filepath.Join(dir, "key.pem"), filepath.Join(dir, "data")).Output()
	if err != nil {
		t.Fatalf("openssl dgst -sign: %v", err)
	}
	return out
}

// opensslEnvelope is an envelope of body signed by openssl with the
// signer's key.
func opensslEnvelope(t *testing.T, s *attest.Signer, body []byte) *attest.Envelope {
	t.Helper()
	sig := opensslSign(t, s, attest.PAE(attest.PayloadType, body))
	return &attest.Envelope{
		PayloadType: attest.PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(body),
		Signatures:  []attest.Signature{{KeyID: s.KeyID(), Sig: base64.StdEncoding.EncodeToString(sig)}},
	}
}

func needOpenSSL(t *testing.T) string {
	t.Helper()
	return tooltest.Need(t, "openssl", "openssl")
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}
