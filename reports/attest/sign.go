package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/vigil-sec/vigil/internal/keys"
	"github.com/vigil-sec/vigil/internal/strictjson"
)

// Envelope is a DSSE envelope: {"payloadType", "payload", "signatures":
// [{"keyid", "sig"}]}, payload and sig in standard base64.
type Envelope = dsse.Envelope

// Signature is one signature of an envelope: the key's ID and the
// signature in standard base64.
type Signature = dsse.Signature

// ErrNoTrustedSignature is an envelope without a good signature by any of
// the given keys. Verify returns it alike whether a signature's keyid
// names no given key, names one whose signature does not match, or the
// envelope has no signature at all.
var ErrNoTrustedSignature = errors.New("no valid signature by a trusted key")

// Signer signs statements with an ECDSA P-256 key.
type Signer struct {
	key *ecdsa.PrivateKey
	pub PublicKey
}

// NewSigner signs with key, which must be ECDSA P-256.
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the signing key is not ECDSA P-256", ErrBadKey)
	}
	pub, err := NewPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, pub: pub}, nil
}

// GenerateKey makes a new P-256 signing key. It returns the signer and the
// key as PKCS#8 PEM text, to be stored sealed and read back with
// ParseSigner.
func GenerateKey() (*Signer, string, error) {
	priv, text, err := keys.NewP256()
	if err != nil {
		return nil, "", err
	}
	s, err := NewSigner(priv)
	return s, text, err
}

// ParseSigner reads a PKCS#8 PEM private key written by GenerateKey.
func ParseSigner(pemText string) (*Signer, error) {
	priv, err := keys.ParseP256(pemText)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return NewSigner(priv)
}

// KeyID is the signing key's ID, its RFC 7638 thumbprint.
func (s *Signer) KeyID() string { return s.pub.ID }

// PublicKey is the public half of the signing key.
func (s *Signer) PublicKey() PublicKey { return s.pub }

// Sign encodes the statement and signs it: one signature, with the key's
// ID as keyid. The signature is deterministic (RFC 6979), so the same
// statement and key always give the same envelope.
func (s *Signer) Sign(ctx context.Context, st *Statement) (*Envelope, error) {
	if err := st.check(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("attest: encoding the statement: %w", err)
	}
	es, err := dsse.NewEnvelopeSigner(dsseSigner{s})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, PayloadType, body)
	if err != nil {
		return nil, fmt.Errorf("attest: signing: %w", err)
	}
	return env, nil
}

// PAE is the DSSE pre-authentication encoding of a payload: the bytes a
// signature covers.
func PAE(payloadType string, payload []byte) []byte { return dsse.PAE(payloadType, payload) }

// dsseSigner is a Signer as the dsse package calls it.
type dsseSigner struct{ s *Signer }

func (d dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	digest := sha256.Sum256(data)
	// A nil random source makes the signature deterministic (RFC 6979);
	// it is ASN.1 DER, as cosign and openssl read it.
	return d.s.key.Sign(nil, digest[:], crypto.SHA256)
}

func (d dsseSigner) KeyID() (string, error) { return d.s.pub.ID, nil }

// dsseVerifier checks signatures by one public key for the dsse package,
// which tries it only on signatures whose keyid is its ID or empty.
type dsseVerifier struct{ k PublicKey }

var errBadSignature = errors.New("bad signature")

func (d dsseVerifier) Verify(_ context.Context, data, sig []byte) error {
	digest := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(d.k.Key, digest[:], sig) {
		return errBadSignature
	}
	return nil
}

func (d dsseVerifier) KeyID() (string, error)   { return d.k.ID, nil }
func (d dsseVerifier) Public() crypto.PublicKey { return d.k.Key }

// Verified is an envelope that passed Verify.
type Verified struct {
	// KeyID is the ID of the key whose signature was good.
	KeyID     string
	Statement *Statement
}

// Verify checks the envelope against the keys and returns its statement.
// Keys are named by their thumbprint (PublicKey.ID is not trusted). A
// signature is checked with the key its keyid names, or with every key
// when it has no keyid (DSSE makes the keyid an unauthenticated hint); one
// good signature suffices. The payload type must be PayloadType and the
// payload standard base64 of an in-toto Statement v1 (ErrMalformed
// otherwise); without a good signature the error is ErrNoTrustedSignature,
// whatever the reason.
func Verify(ctx context.Context, env *Envelope, pubs []PublicKey) (*Verified, error) {
	if len(pubs) == 0 {
		return nil, errors.New("attest: no public key to verify with")
	}
	if env == nil {
		return nil, fmt.Errorf("%w: no envelope", ErrMalformed)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: payload type %q, want %q", ErrMalformed, env.PayloadType, PayloadType)
	}
	if _, err := base64.StdEncoding.DecodeString(env.Payload); err != nil {
		return nil, fmt.Errorf("%w: the payload is not standard base64", ErrMalformed)
	}
	verifiers := make([]dsse.Verifier, 0, len(pubs))
	seen := map[string]bool{}
	for _, k := range pubs {
		k, err := NewPublicKey(k.Key) // the ID from the key, whatever the caller's ID says
		if err != nil {
			return nil, err
		}
		if !seen[k.ID] { // one verifier per key, as dsse counts them
			seen[k.ID] = true
			verifiers = append(verifiers, dsseVerifier{k})
		}
	}
	ev, err := dsse.NewEnvelopeVerifier(verifiers...)
	if err != nil {
		return nil, err
	}
	accepted, body, err := ev.VerifyAndDecode(ctx, env)
	if err != nil || len(accepted) == 0 {
		return nil, fmt.Errorf("%w (the signatures name keys %s; trusted keys: %s)", ErrNoTrustedSignature, signers(env), strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
	}
	st, err := parseStatement(body)
	if err != nil {
		return nil, err
	}
	return &Verified{KeyID: accepted[0].KeyID, Statement: st}, nil
}

// signers lists the keyids of the envelope's signatures for messages.
func signers(env *Envelope) string {
	ids := make([]string, 0, len(env.Signatures))
	for _, s := range env.Signatures {
		id := s.KeyID
		if id == "" {
			id = "(no keyid)"
		}
		ids = append(ids, fmt.Sprintf("%q", id))
	}
	if len(ids) == 0 {
		return "(no signature)"
	}
	return strings.Join(ids, ", ")
}

// MarshalEnvelope encodes an envelope as one line of JSON, without the
// newline.
func MarshalEnvelope(env *Envelope) ([]byte, error) { return json.Marshal(env) }

// ParseEnvelope reads one envelope, refusing duplicate and case-folded
// keys.
func ParseEnvelope(data []byte) (*Envelope, error) {
	var env Envelope
	if err := strictjson.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: not a DSSE envelope: %v", ErrMalformed, err)
	}
	return &env, nil
}
