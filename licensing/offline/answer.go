package offline

import (
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"time"
)

// SealAnswer signs the license with the tenant's Ed25519 key (whose ID is
// signingKeyID) and seals it to the request's client key. The license's
// Version and RequestID are set from the request.
func SealAnswer(req *Request, env *Envelope, lic License, key ed25519.PrivateKey, signingKeyID string) (*Envelope, error) {
	kem, err := KEM(mustKEMName(env.KEM))
	if err != nil {
		return nil, err
	}
	pk, err := kem.NewPublicKey(req.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("%w: client_key: %v", ErrMalformed, err)
	}
	lic.Version, lic.RequestID = Version, req.RequestID
	doc, err := json.Marshal(lic)
	if err != nil {
		return nil, fmt.Errorf("offline: encode license: %w", err)
	}
	plain, err := json.Marshal(signedLicense{License: doc, Signature: ed25519.Sign(key, signedBytes(doc)), KeyID: signingKeyID})
	if err != nil {
		return nil, fmt.Errorf("offline: encode answer: %w", err)
	}
	return seal(pk, PurposeAnswer, keyIDOf(pk), plain)
}

func mustKEMName(id uint16) string {
	n, err := KEMName(id)
	if err != nil {
		return fmt.Sprintf("0x%04x", id)
	}
	return n
}

// Open opens an answer with the client key, verifies the server's
// signature with the server key, checks that it answers the client key's
// pending request, and checks the clock against st (which may be nil) and
// the lease, at time.Now. See OpenAt.
func Open(answer *Envelope, ck *ClientKey, sk *ServerKey, st *State) (*License, error) {
	return OpenAt(answer, ck, sk, st, time.Now())
}

// OpenAt is Open with the local clock reading now. On success it advances
// st (save it afterwards) and, for a license, sets ck.ActivationID (save
// the key too); a deactivation receipt clears it. Errors wrap
// ErrMalformed, ErrTampered, ErrMismatch, ErrClockRollback or
// ErrLeaseExpired; st and ck are unchanged then.
func OpenAt(answer *Envelope, ck *ClientKey, sk *ServerKey, st *State, now time.Time) (*License, error) {
	priv, err := ck.private()
	if err != nil {
		return nil, err
	}
	plain, err := open(answer, priv, PurposeAnswer, keyIDOf(priv.PublicKey()))
	if err != nil {
		return nil, err
	}
	var sl signedLicense
	if err := decodeStrict(plain, maxPlaintext, &sl, "answer"); err != nil {
		return nil, err
	}
	if sl.KeyID != sk.Signing.KeyID {
		return nil, fmt.Errorf("%w: the license is signed with key %q, not with the server key file's %q", ErrTampered, sl.KeyID, sk.Signing.KeyID)
	}
	if len(sl.Signature) != ed25519.SignatureSize || !ed25519.Verify(ed25519.PublicKey(sk.Signing.PublicKey), signedBytes(sl.License), sl.Signature) {
		return nil, fmt.Errorf("%w: the license's signature does not verify with the server's key %s", ErrTampered, sk.Signing.KeyID)
	}
	var lic License
	if err := decodeStrict(sl.License, maxPlaintext, &lic, "license"); err != nil {
		return nil, err
	}
	if err := lic.matches(ck, sk); err != nil {
		return nil, err
	}

	// The greatest time seen: the state's, the server's last-seen time,
	// and now. A clock behind it was turned back.
	seen := lic.LastSeen
	if st != nil && st.MaxSeen.After(seen) {
		seen = st.MaxSeen
	}
	if now.Before(seen.Add(-ClockTolerance)) {
		return nil, fmt.Errorf("%w: the local clock reads %s but %s was already seen; set the clock right", ErrClockRollback,
			now.UTC().Format(time.RFC3339), seen.UTC().Format(time.RFC3339))
	}
	if now.After(seen) {
		seen = now
	}
	if lic.Kind == KindLicense && !seen.Before(lic.LeaseExpiresAt) {
		return nil, fmt.Errorf("%w: the lease ran out at %s; refresh or activate again", ErrLeaseExpired, lic.LeaseExpiresAt.UTC().Format(time.RFC3339))
	}
	if st != nil {
		st.MaxSeen = seen.UTC()
	}
	if lic.Kind == KindLicense {
		ck.ActivationID = lic.ActivationID
	} else {
		ck.ActivationID = ""
	}
	return &lic, nil
}

// matches checks that the license answers the key's pending request.
func (lic *License) matches(ck *ClientKey, sk *ServerKey) error {
	p := ck.Pending
	eq := func(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
	switch {
	case lic.Version != Version:
		return fmt.Errorf("%w: license version %d: want %d", ErrMalformed, lic.Version, Version)
	case p.RequestID == "":
		return fmt.Errorf("%w: the client key has no pending request", ErrMismatch)
	case !eq(lic.RequestID, p.RequestID):
		return fmt.Errorf("%w: the answer is for request %q, the client key awaits %q", ErrMismatch, lic.RequestID, p.RequestID)
	case lic.TenantID != sk.TenantID || lic.TenantID != p.TenantID:
		return fmt.Errorf("%w: the license is for tenant %q, not %q", ErrMismatch, lic.TenantID, p.TenantID)
	case lic.ProductID != p.ProductID:
		return fmt.Errorf("%w: the license is for product %q, not %q", ErrMismatch, lic.ProductID, p.ProductID)
	case lic.SeatID != p.SeatID:
		return fmt.Errorf("%w: the license is for seat %q, not %q", ErrMismatch, lic.SeatID, p.SeatID)
	case p.Fingerprint != "" && !eq(lic.Fingerprint, p.Fingerprint):
		return fmt.Errorf("%w: the license is bound to another machine's fingerprint", ErrMismatch)
	case p.Type == Deactivate && lic.Kind != KindDeactivation, p.Type != Deactivate && lic.Kind != KindLicense:
		return fmt.Errorf("%w: a %s request got a %q answer", ErrMismatch, p.Type, lic.Kind)
	}
	return nil
}
