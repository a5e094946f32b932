package licensing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/licensing/offline"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// Codes of offline activation's refusals.
const (
	// CodeOfflineInvalid: the sealed request is malformed, altered, or
	// sealed to a key that is not a server key.
	CodeOfflineInvalid = "OFFLINE_REQUEST_INVALID"
	// CodeOfflineReplayed: the request was already served.
	CodeOfflineReplayed = "OFFLINE_REQUEST_REPLAYED"
	// CodeOfflineStale: the request is older than offline.RequestMaxAge,
	// or ahead of the server's clock.
	CodeOfflineStale = "OFFLINE_REQUEST_STALE"
)

// errOfflineActivation is the one answer to a refresh or deactivation
// whose activation, proof or client key is wrong, so that none of them can
// be told apart.
var errOfflineActivation = refuse(CodeInvalidCredentials, "the activation is unknown, or the request was not made with the key that activated it")

// offlineKinds are the keys each tenant has: two KEM keys and the key that
// signs licenses.
var offlineKinds = []string{OfflineKeyX25519, OfflineKeyMLKEM768X25519, OfflineKeyEd25519}

// OfflineKey returns the tenant's offline public keys (the server key
// file's content), making and storing them on first need. Errors wrap
// ErrNotFound for an unknown tenant.
func (s *Service) OfflineKey(ctx context.Context, tenantID string) (*offline.ServerKey, error) {
	ks, err := s.offlineKeys(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	kdfID, aeadID := offline.SuiteIDs()
	sk := &offline.ServerKey{Version: offline.Version, TenantID: tenantID, KDFID: kdfID, AEADID: aeadID}
	for _, kind := range offlineKinds {
		k := ks[kind]
		pub, err := base64.StdEncoding.DecodeString(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("licensing: offline key %s: stored public key is malformed", k.ID)
		}
		if kind == OfflineKeyEd25519 {
			sk.Signing = offline.KeyInfo{Alg: "Ed25519", KeyID: k.ID, PublicKey: pub}
			continue
		}
		id, err := offline.KEMID(kind)
		if err != nil {
			return nil, err
		}
		sk.KEMs = append(sk.KEMs, offline.KeyInfo{KEM: kind, KEMID: id, KeyID: k.ID, PublicKey: pub})
	}
	return sk, nil
}

// offlineKeys returns the tenant's active offline keys by kind, making the
// missing ones.
func (s *Service) offlineKeys(ctx context.Context, tenantID string) (map[string]OfflineKey, error) {
	if _, err := s.db.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	stored, err := s.db.OfflineKeys(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("licensing: %w", err)
	}
	ks := make(map[string]OfflineKey, len(offlineKinds))
	for _, k := range stored {
		ks[k.Kind] = k
	}
	for _, kind := range offlineKinds {
		if _, ok := ks[kind]; ok {
			continue
		}
		k, err := s.newOfflineKey(tenantID, kind)
		if err != nil {
			return nil, err
		}
		if ks[kind], err = s.db.EnsureOfflineKey(ctx, k); err != nil {
			return nil, fmt.Errorf("licensing: offline %s key: %w", kind, err)
		}
		s.log.InfoContext(ctx, "made offline key", slog.String("tenant_id", tenantID), slog.String("kind", kind), slog.String("key_id", ks[kind].ID))
	}
	return ks, nil
}

// newOfflineKey makes a key of the kind, its private part sealed.
func (s *Service) newOfflineKey(tenantID, kind string) (OfflineKey, error) {
	k := OfflineKey{ID: "ofk-" + uuid.NewString(), TenantID: tenantID, Kind: kind}
	var pub, priv []byte
	if kind == OfflineKeyEd25519 {
		p, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return OfflineKey{}, fmt.Errorf("licensing: offline signing key: %w", err)
		}
		pub, priv = p, sk.Seed()
	} else {
		kem, err := offline.KEM(kind)
		if err != nil {
			return OfflineKey{}, err
		}
		sk, err := kem.GenerateKey()
		if err != nil {
			return OfflineKey{}, fmt.Errorf("licensing: offline %s key: %w", kind, err)
		}
		if priv, err = sk.Bytes(); err != nil {
			return OfflineKey{}, fmt.Errorf("licensing: offline %s key: %w", kind, err)
		}
		pub = sk.PublicKey().Bytes()
	}
	k.PublicKey = base64.StdEncoding.EncodeToString(pub)
	k.SealedPrivate = s.sealOfflineKey(priv, k)
	return k, nil
}

// offlineKeyAAD binds a sealed private key to its ID, tenant and kind.
func offlineKeyAAD(k OfflineKey) string {
	return k.ID + "\x00" + k.TenantID + "\x00" + k.Kind
}

func (s *Service) sealOfflineKey(priv []byte, k OfflineKey) string {
	return s.kr.offline.seal(priv, offlineKeyAAD(k))
}

func (s *Service) openOfflineKey(k OfflineKey) ([]byte, error) {
	priv, err := s.kr.offline.open(k.SealedPrivate, offlineKeyAAD(k))
	switch {
	case errors.Is(err, errSealMalformed):
		return nil, fmt.Errorf("licensing: offline key %s: sealed private key is malformed", k.ID)
	case err != nil:
		return nil, fmt.Errorf("licensing: offline key %s does not open: the licensing secret changed, or the row was altered", k.ID)
	}
	return priv, nil
}

// proofHash is what the store keeps of a client's proof of possession.
func (s *Service) proofHash(proof string) string {
	return keyedHash(s.kr.proof, proof)
}

// OfflineActivate serves a sealed offline request (activate, refresh or
// deactivate) and returns the sealed answer: a license signed with the
// tenant's Ed25519 key (a deactivation receipt for a deactivation),
// sealed to the client's key.
//
// It refuses, with a *Error, a request that does not open with a server
// key (CodeOfflineInvalid), one made more than offline.RequestMaxAge ago
// (CodeOfflineStale), a replay of a served request (CodeOfflineReplayed),
// and whatever the online flow refuses: a wrong tenant, product or code is
// INVALID_CREDENTIALS as online. An offline activation holds a seat like
// an online one, with the entitlement's lease (not past its expiry); a
// refresh renews it and a deactivation frees it. A refused request is not
// recorded, and takes no seat.
func (s *Service) OfflineActivate(ctx context.Context, env *offline.Envelope) (*offline.Envelope, error) {
	invalid := func(err error) error {
		return refuse(CodeOfflineInvalid, strings.ReplaceAll(err.Error(), "offline: ", ""))
	}
	k, err := s.db.GetOfflineKey(ctx, env.KeyID)
	if errors.Is(err, ErrNotFound) || (err == nil && k.Kind == OfflineKeyEd25519) {
		return nil, refuse(CodeOfflineInvalid, fmt.Sprintf("the request is sealed to key %q, which is not a server key; get the tenant's key again (vigil license server-key)", env.KeyID))
	}
	if err != nil {
		return nil, err
	}
	if name, err := offline.KEMName(env.KEM); err != nil || name != k.Kind {
		return nil, refuse(CodeOfflineInvalid, fmt.Sprintf("the request's KEM 0x%04x is not the KEM of key %s (%s)", env.KEM, k.ID, k.Kind))
	}
	seed, err := s.openOfflineKey(k)
	if err != nil {
		return nil, err
	}
	kem, err := offline.KEM(k.Kind)
	if err != nil {
		return nil, err
	}
	priv, err := kem.NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("licensing: offline key %s: %w", k.ID, err)
	}
	req, err := offline.OpenRequest(env, priv, k.ID)
	if err != nil {
		return nil, invalid(err)
	}
	if req.TenantID != k.TenantID {
		return nil, errInvalidCredentials
	}
	now := s.now().UTC()
	if err := req.CheckTime(now); err != nil {
		return nil, refuse(CodeOfflineStale, strings.ReplaceAll(err.Error(), "offline: ", ""))
	}
	ks, err := s.offlineKeys(ctx, k.TenantID)
	if err != nil {
		return nil, err
	}
	sign := ks[OfflineKeyEd25519]
	signSeed, err := s.openOfflineKey(sign)
	if err != nil {
		return nil, err
	}

	var lic offline.License
	switch req.Type {
	case offline.Activate:
		lic, err = s.offlineActivate(ctx, req, now)
	default:
		lic, err = s.offlineRenew(ctx, req, now)
	}
	if err != nil {
		return nil, err
	}
	ans, err := offline.SealAnswer(req, env, lic, ed25519.NewKeyFromSeed(signSeed), sign.ID)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "offline "+req.Type, slog.String("activation_id", lic.ActivationID), slog.String("entitlement_id", lic.EntitlementID), slog.String("seat_id", lic.SeatID))
	// Request IDs older than any request still accepted can go.
	if _, err := s.db.PruneOfflineRequests(ctx, now.Add(-offline.RequestMaxAge-offline.RequestMaxSkew-time.Hour)); err != nil {
		s.log.WarnContext(ctx, "prune offline requests", slog.Any("error", err))
	}
	return ans, nil
}

// useOfflineRequest records the request's ID in the transaction; a replay
// is refused.
func useOfflineRequest(ctx context.Context, tx Tx, req *offline.Request, now time.Time) error {
	err := tx.UseOfflineRequest(ctx, req.RequestID, req.TenantID, now)
	if errors.Is(err, ErrConflict) {
		return refuse(CodeOfflineReplayed, "this request was already served; make a new request")
	}
	return err
}

// offlineActivate takes (or retakes) a seat for an offline activation.
func (s *Service) offlineActivate(ctx context.Context, req *offline.Request, now time.Time) (offline.License, error) {
	norm, ok := NormalizeCode(req.ActivationCode)
	hash := keyedHash(s.kr.code, norm) // computed for bad codes too: the same work
	se, err := s.db.EntitlementByCodeHash(ctx, hash)
	if errors.Is(err, ErrNotFound) || (err == nil && (!ok || se.TenantID != req.TenantID || se.ProductID != req.ProductID)) {
		return offline.License{}, errInvalidCredentials
	}
	if err != nil {
		return offline.License{}, err
	}
	var lic offline.License
	ev := s.events()
	err = s.db.InLicensingTx(ctx, func(tx Tx) error {
		if err := useOfflineRequest(ctx, tx, req, now); err != nil {
			return err
		}
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
		act, err := s.claimSeat(ctx, tx, e, req.SeatID, req.Fingerprint, now)
		if err != nil {
			return err
		}
		act.SeatName = req.SeatName
		if req.Fingerprint != "" {
			act.Fingerprint = req.Fingerprint
		}
		// An offline seat holds no access token and no nonce: online
		// calls with a token issued before for the seat stop working.
		act.TokenJTI = base64.RawURLEncoding.EncodeToString(randomBytes(16))
		act.NonceHash = s.nonceHash(newNonce())
		act.RefreshedAt, act.LeaseExpiresAt = now, offlineLease(e, now)
		if act.ID == "" {
			act.ID = uuid.Must(uuid.NewV7()).String()
			if _, err = tx.InsertActivation(ctx, act); err == nil {
				err = ev.activated(ctx, tx, e, act, now)
			}
		} else {
			err = tx.UpdateActivation(ctx, act)
		}
		if err != nil {
			return err
		}
		err = tx.PutOfflineActivation(ctx, OfflineActivation{ActivationID: act.ID, SecretHash: s.proofHash(req.Proof),
			ClientKeyHash: offline.KeyHash(req.ClientKey), CreatedAt: now})
		if err != nil {
			return err
		}
		lic, err = offlineLicense(e, act, now)
		return err
	})
	if err == nil {
		ev.queue(ctx)
	}
	return lic, err
}

// claimSeat returns the seat's active activation, if its fingerprint
// allows, or a new activation (ID "") when a seat is free: the seat
// accounting that Activate and offline activation share. The caller holds
// the entitlement's lock and expired the leases that ran out.
func (s *Service) claimSeat(ctx context.Context, tx Tx, e StoredEntitlement, seatID, fingerprint string, now time.Time) (StoredActivation, error) {
	act, err := tx.ActiveSeat(ctx, e.ID, seatID)
	switch {
	case err == nil:
		if act.Fingerprint != "" && !equalHash(act.Fingerprint, fingerprint) {
			return StoredActivation{}, refuse(CodeFingerprintMismatch, "this seat is bound to another machine; deactivate it there first")
		}
		return act, nil
	case errors.Is(err, ErrNotFound):
		n, err := tx.CountActiveSeats(ctx, e.ID, now)
		if err != nil {
			return StoredActivation{}, err
		}
		if n >= e.Seats {
			return StoredActivation{}, refuse(CodeNoSeats, fmt.Sprintf("all %d seats of the entitlement are taken; deactivate one or wait for a lease to run out", e.Seats))
		}
		return StoredActivation{EntitlementID: e.ID, SeatID: seatID, Status: StatusActive, CreatedAt: now}, nil
	default:
		return StoredActivation{}, err
	}
}

// offlineLease is the lease of an offline activation: the entitlement's
// lease period, as online, not past the entitlement's expiry. Entitlements
// for air-gapped sites are made with a longer lease (up to 366 days).
func offlineLease(e StoredEntitlement, now time.Time) time.Time {
	lease := now.Add(e.Lease).Truncate(time.Second)
	if !e.ExpiresAt.IsZero() && lease.After(e.ExpiresAt) {
		lease = e.ExpiresAt
	}
	return lease
}

// offlineRenew serves a refresh (a new lease) or a deactivation (the seat
// freed, a receipt) of an offline activation.
func (s *Service) offlineRenew(ctx context.Context, req *offline.Request, now time.Time) (offline.License, error) {
	var lic offline.License
	ev := s.events()
	err := s.db.InLicensingTx(ctx, func(tx Tx) error {
		if err := useOfflineRequest(ctx, tx, req, now); err != nil {
			return err
		}
		act, err := tx.ActivationForUpdate(ctx, req.ActivationID)
		if err != nil {
			return notFoundAs(err, errOfflineActivation)
		}
		oa, err := tx.OfflineActivation(ctx, act.ID)
		if err != nil {
			return notFoundAs(err, errOfflineActivation)
		}
		proofOK := equalHash(oa.SecretHash, s.proofHash(req.Proof))
		keyOK := equalHash(oa.ClientKeyHash, offline.KeyHash(req.ClientKey))
		if !proofOK || !keyOK {
			return errOfflineActivation
		}
		e, err := tx.Entitlement(ctx, act.EntitlementID)
		if err != nil {
			return err
		}
		if e.TenantID != req.TenantID || e.ProductID != req.ProductID || act.SeatID != req.SeatID {
			return errOfflineActivation
		}
		if act.Fingerprint != "" && !equalHash(act.Fingerprint, req.Fingerprint) {
			return refuse(CodeFingerprintMismatch, "the fingerprint does not match the machine this seat is bound to")
		}
		if req.Type == offline.Deactivate {
			if act.Status != StatusDeactivated { // twice: the same receipt
				act.Status, act.DeactivatedAt = StatusDeactivated, now
				if err := tx.UpdateActivation(ctx, act); err != nil {
					return err
				}
				if err := ev.deactivated(ctx, tx, act, webhooks.ReasonDeactivated, now); err != nil {
					return err
				}
			}
			lic, err = offlineLicense(e, act, now)
			return err
		}
		switch {
		case act.Status == StatusDeactivated:
			return refuse(CodeLeaseExpired, "the activation was deactivated; activate again")
		case act.Status != StatusActive || !now.Before(act.LeaseExpiresAt):
			return refuse(CodeLeaseExpired, "the lease ran out; activate again")
		}
		if err := s.usable(ctx, tx, e, now); err != nil {
			return err
		}
		act.LeaseExpiresAt, act.RefreshedAt = offlineLease(e, now), now
		if err := tx.UpdateActivation(ctx, act); err != nil {
			return err
		}
		lic, err = offlineLicense(e, act, now)
		return err
	})
	if err == nil {
		ev.queue(ctx)
	}
	return lic, err
}

// offlineLicense is the license (or, for a deactivated activation, the
// receipt) of the activation, as of now.
func offlineLicense(e StoredEntitlement, act StoredActivation, now time.Time) (offline.License, error) {
	ent, err := entitlementFrom(e)
	if err != nil {
		return offline.License{}, err
	}
	lic := offline.License{
		Kind: offline.KindLicense, ActivationID: act.ID, TenantID: e.TenantID, ProductID: e.ProductID, EntitlementID: e.ID,
		SeatID: act.SeatID, SeatName: act.SeatName, Fingerprint: act.Fingerprint,
		Features: make(map[string]offline.Feature, len(ent.Features)), EntitlementExpiresAt: e.ExpiresAt,
		IssuedAt: now, LeaseExpiresAt: act.LeaseExpiresAt, LastSeen: now,
	}
	for k, f := range ent.Features {
		lic.Features[k] = offline.Feature{Kind: f.Kind, Limit: f.Limit}
	}
	if act.Status == StatusDeactivated {
		lic.Kind, lic.LeaseExpiresAt, lic.DeactivatedAt = offline.KindDeactivation, time.Time{}, act.DeactivatedAt
	}
	return lic, nil
}
