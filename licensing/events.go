package licensing

// Webhooks for licensing events.
//
// Every tenant has an Ed25519 key pair of its own (made on first use; the
// private key sealed with AES-GCM under a key derived from Config.Secret,
// so that a copy of the database alone does not reveal it) and up to
// WebhookConfig.MaxEndpoints endpoints, each optionally with a v1 HMAC
// secret (shown once, stored sealed the same way). Deliveries are signed
// v1a with the tenant's key, and v1 too when the endpoint has a secret
// (package licensing/webhooks).
//
// Durability: an event and one pending delivery per subscribed endpoint
// are written in the transaction of the effect they report (the seat
// taken, the seat freed), so an event exists if and only if its effect
// committed. After the commit, the deliveries' jobs are inserted through
// the DeliveryQueue (a River job per delivery, retried with backoff); if
// the process stops between the commit and the insert, SweepWebhooks
// inserts the jobs of deliveries that have none. An endpoint that is down
// only delays its deliveries.
//
// How code of this package emits events (Activate and Deactivate do;
// other operations, offline activation included, do the same):
//
//	ev := s.events()
//	err := s.db.InLicensingTx(ctx, func(tx Tx) error {
//		… the effect …
//		return ev.activated(ctx, tx, ent, act, now) // or ev.deactivated(…)
//	})
//	if err == nil {
//		ev.queue(ctx) // after the commit, never inside the transaction
//	}
//
// Replace tx.ExpireLeases with ev.expireLeases to announce the seats that
// lapsed leases free.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// WebhookConfig configures the webhooks for licensing events. Zero fields
// mean defaults.
type WebhookConfig struct {
	// HTTPClient sends deliveries; nil means webhooks.NewHTTPClient with
	// Timeout (no redirects followed).
	HTTPClient *http.Client
	// Timeout bounds one delivery attempt. Default webhooks.DefaultTimeout.
	Timeout time.Duration
	// ExpiringWithin is how long before an entitlement's expiry
	// license.entitlement_expiring is sent. Default 14 days.
	ExpiringWithin time.Duration
	// MaxEndpoints is the most endpoints a tenant may have. Default 20.
	MaxEndpoints int
	// Retention is how long events and their deliveries are kept once
	// no delivery waits for them. Default 30 days.
	Retention time.Duration
}

// Defaults of WebhookConfig.
const (
	DefaultExpiringWithin = 14 * 24 * time.Hour
	DefaultMaxEndpoints   = 20
	DefaultRetention      = 30 * 24 * time.Hour
)

// MaxDeliveriesPage is the largest page of WebhookDeliveries.
const MaxDeliveriesPage = 200

// Limits on webhook input and sweeps.
const (
	maxWebhookURLLen = 2048
	sweepBatch       = 500
)

// DeliveryQueue inserts the jobs of committed deliveries: the server's
// job queue. Inserting the same delivery twice must run it once.
type DeliveryQueue interface {
	QueueDeliveries(ctx context.Context, deliveryIDs []string) error
}

// hookState is the service's webhook machinery.
type hookState struct {
	cfg    WebhookConfig
	seal   sealer // seals keys and secrets
	client *http.Client
	queue  DeliveryQueue
}

func newHookState(seal sealer, cfg WebhookConfig) hookState {
	if cfg.Timeout <= 0 {
		cfg.Timeout = webhooks.DefaultTimeout
	}
	if cfg.ExpiringWithin <= 0 {
		cfg.ExpiringWithin = DefaultExpiringWithin
	}
	if cfg.MaxEndpoints <= 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	client := cfg.HTTPClient
	if client == nil {
		client = webhooks.NewHTTPClient(cfg.Timeout)
	}
	return hookState{cfg: cfg, seal: seal, client: client}
}

// SetDeliveryQueue sets where the jobs of new deliveries go. Call it once,
// before the service is used; without a queue, deliveries wait for
// SweepWebhooks.
func (s *Service) SetDeliveryQueue(q DeliveryQueue) { s.hooks.queue = q }

// sealHook encrypts a key or secret, bound to what it belongs to.
func (h *hookState) sealHook(plain []byte, boundTo string) string {
	return h.seal.seal(plain, boundTo)
}

func (h *hookState) openHook(sealed, boundTo string) ([]byte, error) {
	plain, err := h.seal.open(sealed, boundTo)
	switch {
	case errors.Is(err, errSealMalformed):
		return nil, errors.New("licensing: sealed webhook key is malformed")
	case err != nil:
		return nil, errors.New("licensing: sealed webhook key does not open with this secret")
	}
	return plain, nil
}

// sealedPayloadPrefix marks a stored event whose payload is sealed: one
// that carries what is shown once (webhooks.Data.HasSecret, a report
// link's token), so that the database holds it only sealed.
const sealedPayloadPrefix = "sealed1:"

func payloadAAD(eventID string) string { return "event-payload\x00" + eventID }

// payload is the body to send of a stored event, unsealed if sealed.
func (h *hookState) payload(ev StoredEvent) ([]byte, error) {
	sealed, ok := strings.CutPrefix(ev.Payload, sealedPayloadPrefix)
	if !ok {
		return []byte(ev.Payload), nil
	}
	plain, err := h.seal.open(sealed, payloadAAD(ev.ID))
	if err != nil {
		return nil, fmt.Errorf("licensing: the sealed payload of event %s does not open with this secret", ev.ID)
	}
	return plain, nil
}

func tenantKeyAAD(tenantID string) string { return "tenant-key\x00" + tenantID }
func secretAAD(webhookID string) string   { return "webhook-secret\x00" + webhookID }

// tenantKey returns the tenant's key pair, making it on first use.
func (s *Service) tenantKey(ctx context.Context, tenantID string) (ed25519.PrivateKey, string, error) {
	k, err := s.db.GetWebhookKey(ctx, tenantID)
	if errors.Is(err, ErrNotFound) {
		pub, priv := webhooks.NewKey()
		k, err = s.db.EnsureWebhookKey(ctx, WebhookKey{
			TenantID: tenantID, PublicKey: webhooks.FormatPublicKey(pub),
			PrivateKey: s.hooks.sealHook(priv.Seed(), tenantKeyAAD(tenantID)),
		})
	}
	if err != nil {
		return nil, "", err
	}
	seed, err := s.hooks.openHook(k.PrivateKey, tenantKeyAAD(tenantID))
	if err != nil {
		return nil, "", err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, "", fmt.Errorf("licensing: webhook key of tenant %s is malformed", tenantID)
	}
	return ed25519.NewKeyFromSeed(seed), k.PublicKey, nil
}

// WebhookKey returns the tenant's public key for v1a signatures
// ("whpk_…"), making the key pair on first use. Errors wrap
// ErrNotFound for an unknown tenant.
func (s *Service) WebhookKey(ctx context.Context, tenantID string) (string, error) {
	if _, err := s.db.GetTenant(ctx, tenantID); err != nil {
		return "", err
	}
	_, pub, err := s.tenantKey(ctx, tenantID)
	if err != nil {
		return "", fmt.Errorf("licensing: webhook key: %w", err)
	}
	return pub, nil
}

// Webhook is an endpoint of a tenant for licensing events.
type Webhook struct {
	ID       string   `json:"id"`
	TenantID string   `json:"tenant_id"`
	URL      string   `json:"url"`
	Events   []string `json:"events"` // empty: every type
	// HMAC says whether deliveries also carry a v1 HMAC signature.
	HMAC           bool      `json:"hmac"`
	Status         string    `json:"status"` // active or disabled
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`
}

// NewWebhook is the input of CreateWebhook.
type NewWebhook struct {
	TenantID string
	URL      string
	Events   []string // nil: every type
	HMAC     bool     // make a v1 secret too
}

// CreatedWebhook is a new endpoint and, when asked for, its v1 secret
// ("whsec_…"), which is stored sealed and cannot be shown again.
type CreatedWebhook struct {
	Webhook
	Secret string `json:"secret,omitempty"`
}

func webhookFrom(w StoredWebhook) Webhook {
	ev := w.Events
	if ev == nil {
		ev = []string{}
	}
	return Webhook{ID: w.ID, TenantID: w.TenantID, URL: w.URL, Events: ev, HMAC: w.Secret != "", Status: w.Status,
		DisabledReason: w.DisabledReason, CreatedAt: w.CreatedAt, DisabledAt: w.DisabledAt}
}

// CheckWebhookURL checks an endpoint URL: https, or http to a loopback
// address only (a receiver on the same host); no user or password in it.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("url is required")
	case len(raw) > maxWebhookURLLen:
		return fmt.Errorf("url: at most %d bytes", maxWebhookURLLen)
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("url %q: not an absolute http(s) URL", raw)
	case u.User != nil:
		return errors.New("url: must not carry a user or password; use hmac for a shared secret")
	case u.Fragment != "":
		return errors.New("url: must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && httpx.IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("url %q: must be https (plain http only to a loopback address)", raw)
	}
	return fmt.Errorf("url %q: scheme must be https", raw)
}

// CheckWebhookEvents checks an event filter and returns it sorted and
// without duplicates.
func CheckWebhookEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		if !slices.Contains(webhooks.EventTypes, e) {
			return nil, fmt.Errorf("events: unknown event type %q; want one of %s", e, strings.Join(webhooks.EventTypes, ", "))
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CreateWebhook adds an endpoint to the tenant. Errors wrap
// ErrInvalid for a bad URL or filter, ErrNotFound for an
// unknown tenant and ErrConflict when it has MaxEndpoints already.
func (s *Service) CreateWebhook(ctx context.Context, nw NewWebhook) (CreatedWebhook, error) {
	if err := CheckWebhookURL(nw.URL); err != nil {
		return CreatedWebhook{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	events, err := CheckWebhookEvents(nw.Events)
	if err != nil {
		return CreatedWebhook{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := s.db.GetTenant(ctx, nw.TenantID); err != nil {
		return CreatedWebhook{}, err
	}
	if _, _, err := s.tenantKey(ctx, nw.TenantID); err != nil { // deliveries need it
		return CreatedWebhook{}, fmt.Errorf("licensing: webhook key: %w", err)
	}
	w := StoredWebhook{ID: uuid.Must(uuid.NewV7()).String(), TenantID: nw.TenantID, URL: nw.URL, Events: events}
	var secret webhooks.Secret
	if nw.HMAC {
		secret = webhooks.NewSecret()
		w.Secret = s.hooks.sealHook(secret, secretAAD(w.ID))
	}
	if w, err = s.db.CreateLicenseWebhook(ctx, w, s.hooks.cfg.MaxEndpoints); err != nil {
		return CreatedWebhook{}, err
	}
	out := CreatedWebhook{Webhook: webhookFrom(w)}
	if secret != nil {
		out.Secret = secret.String()
	}
	s.log.InfoContext(ctx, "license webhook created", slog.String("tenant_id", w.TenantID), slog.String("webhook_id", w.ID), slog.Bool("hmac", secret != nil))
	return out, nil
}

// ListWebhooks returns the tenant's endpoints, oldest first. Errors wrap
// ErrNotFound for an unknown tenant.
func (s *Service) ListWebhooks(ctx context.Context, tenantID string) ([]Webhook, error) {
	if _, err := s.db.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	ws, err := s.db.ListLicenseWebhooks(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("licensing: %w", err)
	}
	out := make([]Webhook, len(ws))
	for i, w := range ws {
		out[i] = webhookFrom(w)
	}
	return out, nil
}

// GetWebhook returns the tenant's endpoint; errors wrap ErrNotFound.
func (s *Service) GetWebhook(ctx context.Context, tenantID, id string) (Webhook, error) {
	w, err := s.db.GetLicenseWebhook(ctx, tenantID, id)
	if err != nil {
		return Webhook{}, err
	}
	return webhookFrom(w), nil
}

// DeleteWebhook deletes the tenant's endpoint and its pending deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, tenantID, id string) error {
	return s.db.DeleteLicenseWebhook(ctx, tenantID, id)
}

// Delivery is the delivery of an event to an endpoint, with its attempts.
type Delivery struct {
	ID            string            `json:"id"`
	EventID       string            `json:"event_id"` // the webhook-id header
	EventType     string            `json:"event_type"`
	Status        string            `json:"status"` // pending, delivered, failed or cancelled
	Attempts      []DeliveryAttempt `json:"attempts"`
	LastError     string            `json:"last_error,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	LastAttemptAt time.Time         `json:"last_attempt_at,omitzero"`
	DeliveredAt   time.Time         `json:"delivered_at,omitzero"`
}

// DeliveryAttempt is one attempt of a delivery.
type DeliveryAttempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"` // absent when there was no answer
	Outcome    string    `json:"outcome"`               // delivered, failed or gone
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// WebhookDeliveries returns a page of the endpoint's deliveries, newest
// first, and the cursor of the next page ("" at the end). Errors wrap
// ErrNotFound for an unknown endpoint and ErrInvalid for a bad
// cursor or limit.
func (s *Service) WebhookDeliveries(ctx context.Context, tenantID, webhookID, cursor string, limit int) ([]Delivery, string, error) {
	if limit < 1 || limit > MaxDeliveriesPage {
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalid, limit, MaxDeliveriesPage)
	}
	if _, err := s.db.GetLicenseWebhook(ctx, tenantID, webhookID); err != nil {
		return nil, "", err
	}
	var after DeliveryCursor
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		at, id, ok := strings.Cut(string(b), "|")
		t, terr := time.Parse(time.RFC3339Nano, at)
		if err != nil || !ok || terr != nil || id == "" {
			return nil, "", fmt.Errorf("%w: cursor %q: not a cursor of this list; start again without one", ErrInvalid, cursor)
		}
		after = DeliveryCursor{CreatedAt: t, ID: id}
	}
	ds, err := s.db.ListLicenseDeliveries(ctx, webhookID, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[limit-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(last.CreatedAt.Format(time.RFC3339Nano) + "|" + last.ID))
	}
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = Delivery{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, LastError: d.LastError,
			CreatedAt: d.CreatedAt, LastAttemptAt: d.LastAttemptAt, DeliveredAt: d.DeliveredAt, Attempts: []DeliveryAttempt{}}
		for _, a := range d.AttemptLog {
			out[i].Attempts = append(out[i].Attempts, DeliveryAttempt{Attempt: a.Attempt, At: a.At, StatusCode: a.Status,
				Outcome: a.Outcome, Error: a.Error, DurationMS: a.Duration.Milliseconds()})
		}
	}
	return out, next, nil
}

// events collects the deliveries written in one transaction, so that
// their jobs are queued once it commits.
type events struct {
	s   *Service
	ids []string
	// endpoints caches the tenants' active endpoints for the transaction.
	endpoints map[string][]StoredWebhook
}

func (s *Service) events() *events {
	return &events{s: s, endpoints: map[string][]StoredWebhook{}}
}

func (ev *events) subscribers(ctx context.Context, tx EventTx, tenantID, typ string) ([]string, error) {
	ws, ok := ev.endpoints[tenantID]
	if !ok {
		var err error
		if ws, err = tx.ActiveLicenseWebhooks(ctx, tenantID); err != nil {
			return nil, err
		}
		ev.endpoints[tenantID] = ws
	}
	var ids []string
	for _, w := range ws {
		if w.Wants(typ) {
			ids = append(ids, w.ID)
		}
	}
	return ids, nil
}

// emit writes an event of the type for the tenant's subscribed endpoints
// in tx; with no subscriber it writes nothing.
func (ev *events) emit(ctx context.Context, tx EventTx, typ string, data webhooks.Data, at time.Time) error {
	subs, err := ev.subscribers(ctx, tx, data.TenantID, typ)
	if err != nil || len(subs) == 0 {
		return err
	}
	payload, err := json.Marshal(webhooks.Event{Type: typ, Timestamp: at.UTC(), Data: data})
	if err != nil {
		return fmt.Errorf("licensing: encode event: %w", err)
	}
	id := "msg_" + strings.ReplaceAll(uuid.Must(uuid.NewV7()).String(), "-", "")
	stored := string(payload)
	if data.HasSecret() { // a report link's token: kept sealed until sent
		stored = sealedPayloadPrefix + ev.s.hooks.seal.seal(payload, payloadAAD(id))
	}
	ids, err := tx.InsertLicenseEvent(ctx, StoredEvent{ID: id, TenantID: data.TenantID, Type: typ, Payload: stored, CreatedAt: at}, subs)
	if err != nil {
		return err
	}
	ev.ids = append(ev.ids, ids...)
	return nil
}

// wanted reports whether the tenant has an active endpoint at all.
func (ev *events) wanted(ctx context.Context, tx Tx, tenantID string) (bool, error) {
	if _, err := ev.subscribers(ctx, tx, tenantID, ""); err != nil {
		return false, err
	}
	return len(ev.endpoints[tenantID]) > 0, nil
}

// activated announces a new seat taken on e, and license.seats_exhausted
// when it was the last free one.
func (ev *events) activated(ctx context.Context, tx Tx, e StoredEntitlement, act StoredActivation, now time.Time) error {
	if ok, err := ev.wanted(ctx, tx, e.TenantID); err != nil || !ok {
		return err
	}
	data := webhooks.Data{TenantID: e.TenantID, ProductID: e.ProductID, EntitlementID: e.ID, ActivationID: act.ID, SeatID: act.SeatID}
	if err := ev.emit(ctx, tx, webhooks.EventActivated, data, now); err != nil {
		return err
	}
	n, err := tx.CountActiveSeats(ctx, e.ID, now)
	if err != nil || n < e.Seats {
		return err
	}
	return ev.emit(ctx, tx, webhooks.EventSeatsExhausted, webhooks.Data{TenantID: e.TenantID, ProductID: e.ProductID, EntitlementID: e.ID,
		ActivationID: act.ID, Seats: e.Seats, ActiveSeats: n}, now)
}

// deactivated announces a seat freed, by the client (reason
// webhooks.ReasonDeactivated) or by a lapsed lease.
func (ev *events) deactivated(ctx context.Context, tx Tx, act StoredActivation, reason string, now time.Time) error {
	e, err := tx.Entitlement(ctx, act.EntitlementID)
	if err != nil {
		return err
	}
	return ev.emit(ctx, tx, webhooks.EventDeactivated, webhooks.Data{TenantID: e.TenantID, ProductID: e.ProductID, EntitlementID: e.ID,
		ActivationID: act.ID, SeatID: act.SeatID, Reason: reason}, now)
}

// expireLeases is tx.ExpireLeases that announces each seat it frees.
func (ev *events) expireLeases(ctx context.Context, tx Tx, e StoredEntitlement, now time.Time) error {
	if ok, err := ev.wanted(ctx, tx, e.TenantID); err != nil || !ok {
		if err != nil {
			return err
		}
		return tx.ExpireLeases(ctx, e.ID, now)
	}
	acts, err := tx.ExpireLapsedLeases(ctx, e.ID, now)
	if err != nil {
		return err
	}
	for _, a := range acts {
		err := ev.emit(ctx, tx, webhooks.EventDeactivated, webhooks.Data{TenantID: e.TenantID, ProductID: e.ProductID, EntitlementID: e.ID,
			ActivationID: a.ID, SeatID: a.SeatID, Reason: webhooks.ReasonLeaseExpired}, now)
		if err != nil {
			return err
		}
	}
	return nil
}

// queue inserts the jobs of the deliveries written, once their
// transaction committed. A failure is logged: SweepWebhooks inserts them
// later.
func (ev *events) queue(ctx context.Context) {
	if len(ev.ids) == 0 {
		return
	}
	ids := ev.ids
	ev.ids = nil
	if err := ev.s.queueDeliveries(context.WithoutCancel(ctx), ids); err != nil {
		ev.s.log.WarnContext(ctx, "webhook deliveries not queued yet; the sweep will", slog.Int("count", len(ids)), slog.Any("error", err))
	}
}

func (s *Service) queueDeliveries(ctx context.Context, ids []string) error {
	if s.hooks.queue == nil {
		return errors.New("licensing: no delivery queue")
	}
	if err := s.hooks.queue.QueueDeliveries(ctx, ids); err != nil {
		return err
	}
	return s.db.MarkLicenseDeliveriesQueued(ctx, ids, s.now())
}

// SweepWebhooks is the periodic work of the webhooks: it frees the seats
// of lapsed leases of tenants with webhooks and announces them, announces
// the entitlements expiring within WebhookConfig.ExpiringWithin (once per
// entitlement and expiry date), and queues the jobs of deliveries that
// have none (a process stopped after the commit of their event); it
// deletes the events older than WebhookConfig.Retention that no delivery
// waits for, and the stored answers older than Config.IdempotencyTTL,
// which no retry can replay any more. It runs whether or not any tenant
// has a webhook.
func (s *Service) SweepWebhooks(ctx context.Context) error {
	now := s.now().UTC()
	var errs []error
	lapsed, err := s.db.LapsedLeaseEntitlements(ctx, now, sweepBatch)
	errs = append(errs, err)
	for _, id := range lapsed {
		ev := s.events()
		err := s.db.InLicensingTx(ctx, func(tx Tx) error {
			e, err := tx.LockEntitlement(ctx, id)
			if err != nil {
				return err
			}
			return ev.expireLeases(ctx, tx, e, now)
		})
		if err == nil {
			ev.queue(ctx)
		}
		errs = append(errs, err)
	}
	expiring, err := s.db.ExpiringEntitlements(ctx, now, now.Add(s.hooks.cfg.ExpiringWithin), sweepBatch)
	errs = append(errs, err)
	for _, e := range expiring {
		ev := s.events()
		err := s.db.InLicensingTx(ctx, func(tx Tx) error {
			added, err := tx.AddExpiryNotice(ctx, e.ID, e.ExpiresAt, now)
			if err != nil || !added {
				return err
			}
			return ev.emit(ctx, tx, webhooks.EventEntitlementExpiring, webhooks.Data{TenantID: e.TenantID, ProductID: e.ProductID,
				EntitlementID: e.ID, ExpiresAt: e.ExpiresAt.UTC()}, now)
		})
		if err == nil {
			ev.queue(ctx)
		}
		errs = append(errs, err)
	}
	if s.hooks.queue != nil {
		ids, err := s.db.UnqueuedLicenseDeliveries(ctx, sweepBatch)
		if err == nil && len(ids) > 0 {
			err = s.queueDeliveries(ctx, ids)
		}
		errs = append(errs, err)
	}
	_, err = s.db.PruneLicenseEvents(ctx, now.Add(-s.hooks.cfg.Retention))
	errs = append(errs, err)
	// Stored answers replay for IdempotencyTTL only (chain), then only grow.
	_, err = s.db.PruneIdempotentAnswers(ctx, now.Add(-s.cfg.IdempotencyTTL))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("licensing: sweep webhooks: %w", err)
	}
	return nil
}

// DeliverWebhook makes one attempt of a delivery and records it: the
// delivery job's work. It returns an error when the attempt failed and
// another should follow; on the last attempt (lastAttempt) a failure is
// recorded as final instead. 410 Gone disables the endpoint and cancels
// its pending deliveries. A delivery that is gone (its endpoint deleted)
// or no longer pending needs nothing.
func (s *Service) DeliverWebhook(ctx context.Context, deliveryID string, lastAttempt bool) error {
	w, err := s.db.LicenseDeliveryWork(ctx, deliveryID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.Delivery.Status != DeliveryPending {
		return nil
	}
	log := s.log.With(slog.String("delivery_id", deliveryID), slog.String("webhook_id", w.Webhook.ID), slog.String("event_id", w.Event.ID))
	if w.Webhook.Status != StatusActive {
		return s.db.CancelLicenseDelivery(ctx, deliveryID, DeliveryCancelled, "the endpoint was disabled: "+w.Webhook.DisabledReason)
	}
	priv, _, err := s.tenantKey(ctx, w.Event.TenantID)
	if err != nil {
		return fmt.Errorf("licensing: webhook key: %w", err)
	}
	keys := webhooks.Keys{Private: priv}
	if w.Webhook.Secret != "" {
		if keys.Secret, err = s.hooks.openHook(w.Webhook.Secret, secretAAD(w.Webhook.ID)); err != nil {
			return err
		}
	}
	payload, err := s.hooks.payload(w.Event)
	if err != nil {
		return err
	}
	res := webhooks.Send(ctx, s.hooks.client, w.Webhook.URL, w.Event.ID, s.now(), payload, keys)
	if res.Outcome == webhooks.Failed && ctx.Err() != nil {
		return ctx.Err() // stopping: not the endpoint's fault, try again
	}
	status, disable := DeliveryPending, ""
	switch {
	case res.Outcome == webhooks.Delivered:
		status = DeliveryDelivered
	case res.Outcome == webhooks.Gone:
		status, disable = DeliveryFailed, "the endpoint answered 410 Gone"
	case lastAttempt:
		status = DeliveryFailed
	}
	_, err = s.db.RecordLicenseAttempt(context.WithoutCancel(ctx), deliveryID, StoredAttempt{
		At: s.now().UTC(), Status: res.Status, Outcome: string(res.Outcome), Error: res.Error, Duration: res.Duration,
	}, status, disable)
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		return nil // finished by another attempt, cancelled, or deleted meanwhile
	}
	if err != nil {
		return err
	}
	switch {
	case disable != "":
		log.WarnContext(ctx, "license webhook endpoint disabled: it answered 410 Gone")
	case status == DeliveryDelivered:
		log.InfoContext(ctx, "license webhook delivered", slog.Int("status", res.Status))
	case status == DeliveryFailed:
		log.WarnContext(ctx, "license webhook delivery failed; no attempts left", slog.Int("status", res.Status), slog.String("error", res.Error))
	default:
		return fmt.Errorf("licensing: delivery %s: %s", deliveryID, res.Error)
	}
	return nil
}
