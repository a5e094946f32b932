package licensing

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// tokenType is the JWT "typ" of Licensing API access tokens.
const tokenType = "vigil-license+jwt"

// Limits on what clients send.
const (
	maxSeatIDLen      = 256
	maxFingerprintLen = 512
)

// ActivateRequest is what POST /api/v1/activate carries.
type ActivateRequest struct {
	TenantID       string
	ProductID      string
	ActivationCode string
	SeatID         string
	SeatName       string
	Fingerprint    string
}

// Activation is the state of a seat as the client sees it.
type Activation struct {
	ID             string    `json:"id"`
	SeatID         string    `json:"seat_id"`
	SeatName       string    `json:"seat_name,omitempty"`
	Status         string    `json:"status"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	CreatedAt      time.Time `json:"created_at"`
	RefreshedAt    time.Time `json:"refreshed_at"`
}

// Grant is the answer to an activation or a refresh: a token, the lease,
// and the first nonce of the chain (for an activation).
type Grant struct {
	AccessToken    string      `json:"access_token"`
	ActivationID   string      `json:"activation_id"`
	LeaseExpiresAt time.Time   `json:"lease_expires_at"`
	Entitlement    Entitlement `json:"entitlement"`
}

// Activate takes (or retakes) a seat of the entitlement the code unlocks
// and returns a grant and the first nonce. A wrong tenant, product or code
// all give the same INVALID_CREDENTIALS error.
func (s *Service) Activate(ctx context.Context, req ActivateRequest) (Grant, string, error) {
	if req.SeatID == "" || len(req.SeatID) > maxSeatIDLen || len(req.SeatName) > maxSeatIDLen || len(req.Fingerprint) > maxFingerprintLen {
		return Grant{}, "", refuse(CodeInvalidRequest, "seat_id is required; seat_id and seat_name are at most 256 bytes, fingerprint 512")
	}
	norm, ok := NormalizeCode(req.ActivationCode)
	hash := keyedHash(s.kr.code, norm) // computed for bad codes too: the same work
	se, err := s.db.EntitlementByCodeHash(ctx, hash)
	if errors.Is(err, ErrNotFound) || (err == nil && (!ok || se.TenantID != req.TenantID || se.ProductID != req.ProductID)) {
		return Grant{}, "", errInvalidCredentials
	}
	if err != nil {
		return Grant{}, "", err
	}
	now := s.now().UTC()
	nonce := newNonce()
	var (
		grant Grant
		act   StoredActivation
	)
	ev := s.events()
	err = s.db.InLicensingTx(ctx, func(tx Tx) error {
		e, err := tx.LockEntitlement(ctx, se.ID)
		if err != nil {
			return err
		}
		if err := s.usable(ctx, tx, e, now); err != nil {
			return err
		}
		if err := ev.expireLeases(ctx, tx, e, now); err != nil {
			return err
		}
		if act, err = s.claimSeat(ctx, tx, e, req.SeatID, req.Fingerprint, now); err != nil { // offline.go
			return err
		}
		act.SeatName = req.SeatName
		if req.Fingerprint != "" {
			act.Fingerprint = req.Fingerprint
		}
		act.NonceHash = s.nonceHash(nonce)
		act.RefreshedAt = now
		isNew := act.ID == ""
		if isNew {
			act.ID = uuid.Must(uuid.NewV7()).String()
		}
		var token string
		if token, act.TokenJTI, act.LeaseExpiresAt, err = s.issue(e, act.ID, now); err != nil {
			return err
		}
		if isNew {
			_, err = tx.InsertActivation(ctx, act)
		} else {
			err = tx.UpdateActivation(ctx, act)
		}
		if err != nil {
			return err
		}
		if isNew {
			if err := ev.activated(ctx, tx, e, act, now); err != nil {
				return err
			}
		}
		ent, err := entitlementFrom(e)
		if err != nil {
			return err
		}
		grant = Grant{AccessToken: token, ActivationID: act.ID, LeaseExpiresAt: act.LeaseExpiresAt, Entitlement: ent}
		return nil
	})
	if err != nil {
		return Grant{}, "", err
	}
	ev.queue(ctx)
	s.log.InfoContext(ctx, "license activated", slog.String("activation_id", act.ID), slog.String("entitlement_id", se.ID), slog.String("seat_id", req.SeatID))
	return grant, nonce, nil
}

// usable refuses a suspended or expired entitlement or tenant.
func (s *Service) usable(ctx context.Context, tx Tx, e StoredEntitlement, now time.Time) error {
	t, err := tx.Tenant(ctx, e.TenantID)
	if err != nil {
		return err
	}
	return usableStatus(t.Status, e, now)
}

// usableStatus refuses a suspended or expired entitlement, or one whose
// tenant has the status tenantStatus other than active.
func usableStatus(tenantStatus string, e StoredEntitlement, now time.Time) error {
	// One code for both (clients act alike), a message that says which.
	if tenantStatus != StatusActive {
		return refuse(CodeSuspended, "the tenant's account is suspended; contact the vendor")
	}
	if e.Status != StatusActive {
		return refuse(CodeSuspended, "the entitlement is suspended; contact the vendor")
	}
	if !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt) {
		return refuse(CodeExpired, "the entitlement expired on "+e.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// tokenClaims is the payload of an access token.
type tokenClaims struct {
	jwt.Claims
	TenantID      string `json:"tid"`
	ProductID     string `json:"pid"`
	EntitlementID string `json:"eid"`
}

// issue signs a token for the activation, whose lease it returns: the
// entitlement's lease period, not past its expiry.
func (s *Service) issue(e StoredEntitlement, activationID string, now time.Time) (token, jti string, lease time.Time, err error) {
	lease = now.Add(e.Lease).Truncate(time.Second)
	if !e.ExpiresAt.IsZero() && lease.After(e.ExpiresAt) {
		lease = e.ExpiresAt
	}
	jti = base64.RawURLEncoding.EncodeToString(randomBytes(16))
	c := tokenClaims{
		Claims: jwt.Claims{
			Issuer: s.cfg.Issuer, Subject: activationID, Audience: jwt.Audience{s.cfg.Audience},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(lease), ID: jti,
		},
		TenantID: e.TenantID, ProductID: e.ProductID, EntitlementID: e.ID,
	}
	token, err = jwt.Signed(s.signer).Claims(c).Serialize()
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("licensing: sign token: %w", err)
	}
	s.tokens.Put(token, c) // the next call with it skips the signature check
	return token, jti, lease, nil
}

var errInvalidToken = refuse(CodeInvalidToken, "the access token is not valid; activate again")

// verify checks the token's signature, type, issuer and audience, that it
// was issued to the tenant, and (when checkExpiry) its expiry.
func (s *Service) verify(token, tenantID string, checkExpiry bool) (*tokenClaims, error) {
	c, cached := s.tokens.Get(token)
	if !cached {
		tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil || len(tok.Headers) != 1 {
			return nil, errInvalidToken
		}
		h := tok.Headers[0]
		if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != tokenType {
			return nil, errInvalidToken
		}
		key := s.keys[h.KeyID]
		if key == nil {
			return nil, errInvalidToken
		}
		if err := tok.Claims(key, &c); err != nil || c.Subject == "" || c.ID == "" || c.Expiry == nil {
			return nil, errInvalidToken
		}
		s.tokens.Put(token, c)
	}
	at := s.now()
	if !checkExpiry {
		at = c.IssuedAt.Time()
	}
	err := c.ValidateWithLeeway(jwt.Expected{Issuer: s.cfg.Issuer, AnyAudience: jwt.Audience{s.cfg.Audience}, Time: at}, s.cfg.Leeway)
	if errors.Is(err, jwt.ErrExpired) {
		return nil, refuse(CodeLeaseExpired, "the lease ran out; activate again")
	}
	if err != nil || c.TenantID != tenantID {
		return nil, errInvalidToken
	}
	return &c, nil
}

// newNonce returns a random 128-bit nonce.
func newNonce() string { return base64.RawURLEncoding.EncodeToString(randomBytes(16)) }

func (s *Service) nonceHash(nonce string) string { return keyedHash(s.kr.nonce, nonce) }

// CallRequest is what every call of the nonce chain carries.
type CallRequest struct {
	TenantID    string // N-TenantId
	Token       string // the bearer token
	Nonce       string // N-Nonce: the last one issued
	Fingerprint string // N-Fingerprint: required when the seat is bound
	// IdempotencyKey, when set, makes a retry of the same request get the
	// stored answer instead of a nonce mismatch.
	IdempotencyKey string
	// Request identifies the request for idempotency: method, path, body.
	Request []byte
}

// Answer is the outcome of a call: an HTTP status, a JSON body and the
// next nonce. A refusal after the nonce was accepted is an answer too (it
// consumes the nonce); refusals before it are errors.
type Answer struct {
	Status   int
	Body     json.RawMessage
	Nonce    string
	Replayed bool
}

// call is the state an operation of the chain runs with.
type call struct {
	tx  Tx // nil for the pure calls of chain's fast path
	act StoredActivation
	ent StoredEntitlement
	now time.Time
}

type storedAnswer struct {
	Body  json.RawMessage `json:"body"`
	Nonce string          `json:"nonce"`
}

// chain checks the token and the nonce, runs op, and rotates the nonce.
// lockEntitlement serialises op with activations of the same entitlement
// (for counted features); it runs in one transaction. Calls whose op
// touches nothing but the activation's token and lease (Get, Refresh:
// pure) first take a path without a transaction: one read, then one
// compare-and-swap of the nonce with the call's effect and its stored
// answer; if that swap loses a race, or the call is refused, the locked
// path decides, so the outcome is the same as if it had run alone.
func (s *Service) chain(ctx context.Context, req CallRequest, lockEntitlement, pure bool, op func(ctx context.Context, c *call) (any, error)) (Answer, error) {
	claims, err := s.verify(req.Token, req.TenantID, true)
	if err != nil {
		return Answer{}, err
	}
	now := s.now().UTC()
	var keyHash, reqHash string
	if req.IdempotencyKey != "" {
		keyHash = keyedHash(s.kr.idem, req.IdempotencyKey)
		sum := sha256.Sum256(req.Request)
		reqHash = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	st := &chainStep{s: s, req: req, claims: claims, now: now, keyHash: keyHash, reqHash: reqHash, op: op}
	if pure && !lockEntitlement {
		if ans, ok := st.fast(ctx); ok {
			return ans, nil
		}
	}
	var ans Answer
	err = s.db.InLicensingTx(ctx, func(tx Tx) error {
		if lockEntitlement { // entitlement before activation, as Activate does
			if _, err := tx.LockEntitlement(ctx, claims.EntitlementID); err != nil {
				return notFoundAs(err, errInvalidToken)
			}
		}
		// One query: the activation (locked), its entitlement, the
		// tenant's status and the answer stored under the key.
		cs, err := tx.ChainState(ctx, claims.Subject, keyHash)
		if err != nil {
			return notFoundAs(err, errInvalidToken)
		}
		c := &call{tx: tx, now: now}
		var stored *IdempotentAnswer
		if ans, stored, err = st.decide(ctx, c, cs); err != nil || ans.Replayed {
			return err
		}
		// The nonce turns with the call's effect on the activation (op
		// sets its token and lease), in one compare-and-swap.
		swapped, err := tx.RotateActivation(ctx, c.act, cs.Activation.NonceHash)
		if err != nil {
			return err
		}
		if !swapped {
			return refuse(CodeNonceMismatch, "another request used this nonce first")
		}
		if stored != nil {
			err := tx.PutIdempotentAnswer(ctx, *stored)
			if errors.Is(err, ErrConflict) { // an expired answer under the same key
				return refuse(CodeIdempotencyKeyReused, "the Idempotency-Key was used before; use a new one")
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return ans, err
}

// chainStep is one call of the chain, decided on what the store holds.
type chainStep struct {
	s                *Service
	req              CallRequest
	claims           *tokenClaims
	now              time.Time
	keyHash, reqHash string
	op               func(ctx context.Context, c *call) (any, error)
}

// fast runs a pure call without a transaction. ok is false when the
// locked path must decide instead: a refusal, a lost race, an error.
func (st *chainStep) fast(ctx context.Context) (Answer, bool) {
	cs, err := st.s.db.ChainState(ctx, st.claims.Subject, st.keyHash)
	if err != nil {
		return Answer{}, false
	}
	c := &call{now: st.now}
	ans, stored, err := st.decide(ctx, c, cs)
	if err != nil {
		return Answer{}, false
	}
	if ans.Replayed { // a stored answer never changes
		return ans, true
	}
	swapped, err := st.s.db.RotateChain(ctx, c.act, cs.Activation.NonceHash, stored)
	return ans, err == nil && swapped
}

// decide checks the call against cs and runs op. It returns the answer
// with, in c.act, the activation to write (the new nonce hash and op's
// effect) and the answer to store under the idempotency key; or a replay
// of the stored answer (ans.Replayed), which writes nothing; or a
// refusal that consumes no nonce.
func (st *chainStep) decide(ctx context.Context, c *call, cs ChainState) (Answer, *IdempotentAnswer, error) {
	s, req, now := st.s, st.req, st.now
	c.act, c.ent = cs.Activation, cs.Entitlement
	if c.act.EntitlementID != st.claims.EntitlementID {
		return Answer{}, nil, errInvalidToken
	}
	if prev := cs.Answer; prev != nil && !prev.CreatedAt.Before(now.Add(-s.cfg.IdempotencyTTL)) {
		var ans Answer
		err := s.replay(*prev, st.reqHash, req.Nonce, &ans)
		return ans, nil, err
	}
	if !equalHash(c.act.TokenJTI, st.claims.ID) {
		return Answer{}, nil, refuse(CodeInvalidToken, "the access token was replaced by a newer one")
	}
	switch {
	case c.act.Status == StatusDeactivated:
		return Answer{}, nil, refuse(CodeInvalidToken, "the activation was deactivated; activate again")
	case c.act.Status != StatusActive || !now.Before(c.act.LeaseExpiresAt):
		return Answer{}, nil, refuse(CodeLeaseExpired, "the lease ran out; activate again")
	}
	oldHash := s.nonceHash(req.Nonce)
	if req.Nonce == "" || !equalHash(oldHash, c.act.NonceHash) {
		return Answer{}, nil, refuse(CodeNonceMismatch, "N-Nonce is missing or is not the last nonce issued; retry with the Idempotency-Key of the lost request, or deactivate and activate again")
	}
	if c.act.Fingerprint != "" && !equalHash(c.act.Fingerprint, req.Fingerprint) {
		return Answer{}, nil, refuse(CodeFingerprintMismatch, "N-Fingerprint does not match the machine this seat is bound to")
	}

	var v any
	status := 200
	err := usableStatus(cs.TenantStatus, c.ent, now)
	if err == nil {
		v, err = st.op(ctx, c)
	}
	if err != nil {
		e, ok := AsError(err)
		if !ok {
			return Answer{}, nil, err
		}
		v, status = e, e.Status()
	}
	nonce := newNonce()
	c.act.NonceHash = s.nonceHash(nonce)
	body, err := json.Marshal(v)
	if err != nil {
		return Answer{}, nil, fmt.Errorf("licensing: encode answer: %w", err)
	}
	ans := Answer{Status: status, Body: body, Nonce: nonce}
	if st.keyHash == "" {
		return ans, nil, nil
	}
	plain, _ := json.Marshal(storedAnswer{Body: body, Nonce: nonce})
	return ans, &IdempotentAnswer{
		ActivationID: c.act.ID, KeyHash: st.keyHash, RequestHash: st.reqHash, PrevNonceHash: oldHash,
		Status: status, Sealed: s.sealAnswer(plain, c.act.ID, st.keyHash), CreatedAt: now,
	}, nil
}

// replay answers a retry with the stored answer, if it is the same request
// with the same nonce.
func (s *Service) replay(prev IdempotentAnswer, reqHash, nonce string, ans *Answer) error {
	if !equalHash(prev.RequestHash, reqHash) {
		return refuse(CodeIdempotencyKeyReused, "the Idempotency-Key was used for a different request; use a new key for a new request")
	}
	if nonce == "" || !equalHash(prev.PrevNonceHash, s.nonceHash(nonce)) {
		return refuse(CodeNonceMismatch, "a retry must send the nonce the first attempt sent")
	}
	plain, err := s.openAnswer(prev.Sealed, prev.ActivationID, prev.KeyHash)
	if err != nil {
		return err
	}
	var sa storedAnswer
	if err := json.Unmarshal(plain, &sa); err != nil {
		return fmt.Errorf("licensing: stored answer: %w", err)
	}
	*ans = Answer{Status: prev.Status, Body: sa.Body, Nonce: sa.Nonce, Replayed: true}
	return nil
}

func notFoundAs(err error, as *Error) error {
	if errors.Is(err, ErrNotFound) {
		return as
	}
	return err
}

// State is the answer of GET /api/v1/activation.
type State struct {
	Activation  Activation  `json:"activation"`
	Entitlement Entitlement `json:"entitlement"`
}

func activationFrom(a StoredActivation) Activation {
	return Activation{ID: a.ID, SeatID: a.SeatID, SeatName: a.SeatName, Status: a.Status,
		LeaseExpiresAt: a.LeaseExpiresAt, CreatedAt: a.CreatedAt, RefreshedAt: a.RefreshedAt}
}

// Get returns the activation's state and entitlement.
func (s *Service) Get(ctx context.Context, req CallRequest) (Answer, error) {
	return s.chain(ctx, req, false, true, func(ctx context.Context, c *call) (any, error) {
		ent, err := entitlementFrom(c.ent)
		return State{Activation: activationFrom(c.act), Entitlement: ent}, err
	})
}

// Refresh renews the lease and returns a new token.
func (s *Service) Refresh(ctx context.Context, req CallRequest) (Answer, error) {
	return s.chain(ctx, req, false, true, func(ctx context.Context, c *call) (any, error) {
		token, jti, lease, err := s.issue(c.ent, c.act.ID, c.now)
		if err != nil {
			return nil, err
		}
		// chain writes them with the new nonce.
		c.act.TokenJTI, c.act.LeaseExpiresAt, c.act.RefreshedAt = jti, lease, c.now
		ent, err := entitlementFrom(c.ent)
		return Grant{AccessToken: token, ActivationID: c.act.ID, LeaseExpiresAt: lease, Entitlement: ent}, err
	})
}

// Feature operations.
const (
	Checkout = "checkout"
	Return   = "return"
	Track    = "track"
)

// FeatureUsage is the answer of a feature operation.
type FeatureUsage struct {
	Feature    string `json:"feature"`
	Kind       string `json:"kind"`
	CheckedOut int    `json:"checked_out"`     // by this activation
	InUse      int    `json:"in_use"`          // by every seat of the entitlement
	Limit      int    `json:"limit,omitempty"` // of a counted feature
	Tracked    int64  `json:"tracked"`         // usage tracked by this activation
}

// MaxTrackAmount is the most usage one Track call records.
const MaxTrackAmount = 1_000_000

// Feature checks out (Checkout) or returns (Return) one unit of a counted
// feature, or tracks amount of usage of any feature (Track): 1 to
// MaxTrackAmount, 0 meaning 1; anything else is refused with
// CodeInvalidField before the call touches anything (its nonce stays the
// last one). The tracked total saturates at the largest int64. Checking
// out a boolean feature only confirms it is entitled.
func (s *Service) Feature(ctx context.Context, req CallRequest, key, op string, amount int64) (Answer, error) {
	if op != Checkout && op != Return && op != Track {
		return Answer{}, refuse(CodeNotFound, "unknown feature operation "+op)
	}
	if op == Track {
		if amount == 0 {
			amount = 1
		}
		if amount < 1 || amount > MaxTrackAmount {
			return Answer{}, refuse(CodeInvalidField, fmt.Sprintf("amount %d: want 1 to %d (0 or none means 1)", amount, MaxTrackAmount))
		}
	}
	return s.chain(ctx, req, op != Track, false, func(ctx context.Context, c *call) (any, error) {
		ent, err := entitlementFrom(c.ent)
		if err != nil {
			return nil, err
		}
		f, ok := ent.Features[key]
		if !ok {
			return nil, refuse(CodeFeatureNotEntitled, fmt.Sprintf("the entitlement does not include feature %q", key))
		}
		mine, tracked, err := c.tx.FeatureUsage(ctx, c.act.ID, key)
		if err != nil {
			return nil, err
		}
		var delta int
		switch {
		case op == Track: // amount checked above
		case f.Kind != FeatureCounted:
			if op == Return {
				return nil, refuse(CodeFeatureNotCheckedOut, fmt.Sprintf("feature %q is boolean: nothing to return", key))
			}
		case op == Checkout:
			inUse, err := c.tx.FeatureInUse(ctx, c.ent.ID, key, c.now)
			if err != nil {
				return nil, err
			}
			if inUse >= f.Limit {
				return nil, refuse(CodeFeatureLimitReached, fmt.Sprintf("all %d of feature %q are checked out; return one first", f.Limit, key))
			}
			delta = 1
		case op == Return:
			if mine < 1 {
				return nil, refuse(CodeFeatureNotCheckedOut, fmt.Sprintf("this activation has no %q checked out", key))
			}
			delta = -1
		}
		if op != Track {
			amount = 0
		}
		if delta != 0 || amount != 0 {
			if mine, tracked, err = c.tx.AddFeatureUsage(ctx, c.act.ID, key, delta, amount); err != nil {
				return nil, err
			}
		}
		inUse, err := c.tx.FeatureInUse(ctx, c.ent.ID, key, c.now)
		if err != nil {
			return nil, err
		}
		return FeatureUsage{Feature: key, Kind: f.Kind, CheckedOut: mine, InUse: inUse, Limit: f.Limit, Tracked: tracked}, nil
	})
}

// Deactivate frees the activation's seat. It needs the token but not the
// nonce, so that a client that lost its nonce can still free its seat; a
// token whose lease ran out still works. Deactivating twice is a no-op.
func (s *Service) Deactivate(ctx context.Context, tenantID, token string) error {
	claims, err := s.verify(token, tenantID, false)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	ev := s.events()
	err = s.db.InLicensingTx(ctx, func(tx Tx) error {
		act, err := tx.ActivationForUpdate(ctx, claims.Subject)
		if err != nil {
			return notFoundAs(err, errInvalidToken)
		}
		if !equalHash(act.TokenJTI, claims.ID) {
			return refuse(CodeInvalidToken, "the access token was replaced by a newer one")
		}
		if act.Status == StatusDeactivated {
			return nil
		}
		wasActive := act.Status == StatusActive // not yet announced as expired
		act.Status, act.DeactivatedAt = StatusDeactivated, now
		if err := tx.UpdateActivation(ctx, act); err != nil || !wasActive {
			return err
		}
		return ev.deactivated(ctx, tx, act, webhooks.ReasonDeactivated, now)
	})
	if err != nil {
		return err
	}
	ev.queue(ctx)
	s.log.InfoContext(ctx, "license deactivated", slog.String("activation_id", claims.Subject))
	return nil
}
