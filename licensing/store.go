package licensing

import (
	"context"
	"slices"
	"time"
)

// Store is what the Service needs from its database; internal/store
// implements it. Reads of a missing row return an error that wraps
// ErrNotFound; writes refused for bad input wrap ErrInvalid, and those
// that contradict what is stored (a duplicate) wrap ErrConflict.
type Store interface {
	// CreateTenant stores a new, active tenant with a new ID unless t.ID
	// is set; its name must not be empty.
	CreateTenant(ctx context.Context, t Tenant) (Tenant, error)
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// ListTenants returns one page of the tenants, oldest first, and the
	// cursor of the next page ("" on the last).
	ListTenants(ctx context.Context, p Page) ([]Tenant, string, error)
	// SetTenantStatus sets the status (StatusActive, StatusSuspended).
	SetTenantStatus(ctx context.Context, id, status string) error
	RenameTenant(ctx context.Context, id, name string) (Tenant, error)

	// CreateProduct stores a new product with a new ID unless p.ID is set.
	CreateProduct(ctx context.Context, p Product) (Product, error)
	GetProduct(ctx context.Context, id string) (Product, error)
	ListProducts(ctx context.Context, p Page) ([]Product, string, error)
	RenameProduct(ctx context.Context, id, name string) (Product, error)

	// CreateEntitlement stores a new, active entitlement; its tenant and
	// product must exist (ErrNotFound) and its code hash be new
	// (ErrConflict).
	CreateEntitlement(ctx context.Context, e StoredEntitlement) (StoredEntitlement, error)
	GetEntitlement(ctx context.Context, id string) (StoredEntitlement, error)
	// EntitlementByCodeHash looks the entitlement up by the keyed hash of
	// its activation code.
	EntitlementByCodeHash(ctx context.Context, codeHash string) (StoredEntitlement, error)
	// ListEntitlements returns one page of the tenant's entitlements (of
	// every tenant for ""), oldest first, and the next page's cursor.
	ListEntitlements(ctx context.Context, tenantID string, p Page) ([]StoredEntitlement, string, error)
	// UpdateEntitlement applies the change and returns the entitlement.
	UpdateEntitlement(ctx context.Context, id string, c StoredEntitlementChange) (StoredEntitlement, error)
	// SetEntitlementStatus sets the status (StatusActive, StatusSuspended).
	SetEntitlementStatus(ctx context.Context, id, status string) error

	// EnsureLicensingKey returns the active key of k.Kind, storing k as
	// that key first if there is none; racing callers all get the winner's.
	EnsureLicensingKey(ctx context.Context, k Key) (Key, error)
	// ListLicensingKeys returns the keys of the kind, retired ones
	// included, newest first.
	ListLicensingKeys(ctx context.Context, kind string) ([]Key, error)
	ActiveLicensingKey(ctx context.Context, kind string) (Key, error)
	// ReplaceLicensingKeyMaterial sets the key's material if it is still
	// old, and reports whether it did.
	ReplaceLicensingKeyMaterial(ctx context.Context, id, old, material string) (bool, error)
	// ResealLicensing replaces, in one transaction, k's material with
	// material and every sealed value with what reseal returns for it. It
	// does nothing and returns false when k's material is no longer
	// k.Material; an error from reseal rolls everything back.
	ResealLicensing(ctx context.Context, k Key, material string, reseal func(SealedValue) (string, error)) (bool, error)

	// InLicensingTx runs fn in a write transaction, committed if fn
	// returns nil and rolled back otherwise.
	InLicensingTx(ctx context.Context, fn func(Tx) error) error
	// ChainState is Tx.ChainState outside a transaction, without a lock.
	ChainState(ctx context.Context, activationID, keyHash string) (ChainState, error)
	// RotateChain is Tx.RotateActivation and, when ans is not nil,
	// Tx.PutIdempotentAnswer, both or neither, without a transaction
	// around it: false when the nonce hash was no longer oldHash.
	RotateChain(ctx context.Context, a StoredActivation, oldHash string, ans *IdempotentAnswer) (bool, error)
	// PruneIdempotentAnswers deletes the answers stored before the time
	// and returns how many it deleted.
	PruneIdempotentAnswers(ctx context.Context, before time.Time) (int64, error)

	// EnsureOfflineKey returns the tenant's active key of k.Kind, storing
	// k as that key first if there is none; racing callers all get the
	// winner's.
	EnsureOfflineKey(ctx context.Context, k OfflineKey) (OfflineKey, error)
	// OfflineKeys returns the tenant's active offline keys, one per kind
	// that exists.
	OfflineKeys(ctx context.Context, tenantID string) ([]OfflineKey, error)
	// GetOfflineKey returns the key with the ID, retired or not.
	GetOfflineKey(ctx context.Context, id string) (OfflineKey, error)
	// PruneOfflineRequests deletes the request IDs recorded before the
	// time and returns how many it deleted.
	PruneOfflineRequests(ctx context.Context, before time.Time) (int64, error)

	// EnsureWebhookKey returns the tenant's webhook key, storing k first
	// if it has none; racing callers all get the winner's.
	EnsureWebhookKey(ctx context.Context, k WebhookKey) (WebhookKey, error)
	GetWebhookKey(ctx context.Context, tenantID string) (WebhookKey, error)
	// CreateLicenseWebhook stores a new, active endpoint, with a new ID
	// unless w.ID is set; a tenant has at most max (ErrConflict beyond).
	CreateLicenseWebhook(ctx context.Context, w StoredWebhook, max int) (StoredWebhook, error)
	// GetLicenseWebhook returns the tenant's endpoint (ErrNotFound for
	// another tenant's).
	GetLicenseWebhook(ctx context.Context, tenantID, id string) (StoredWebhook, error)
	// ListLicenseWebhooks returns the tenant's endpoints, oldest first.
	ListLicenseWebhooks(ctx context.Context, tenantID string) ([]StoredWebhook, error)
	// DeleteLicenseWebhook deletes the tenant's endpoint with its
	// deliveries.
	DeleteLicenseWebhook(ctx context.Context, tenantID, id string) error
	// LapsedLeaseEntitlements returns the IDs of up to limit
	// entitlements, of tenants with an active webhook, that have an
	// active activation whose lease ended at or before now.
	LapsedLeaseEntitlements(ctx context.Context, now time.Time, limit int) ([]string, error)
	// ExpiringEntitlements returns up to limit active entitlements, of
	// tenants with an active webhook, that expire after now and at or
	// before until and were not announced for that expiry yet.
	ExpiringEntitlements(ctx context.Context, now, until time.Time, limit int) ([]StoredEntitlement, error)
	// LicenseDeliveryWork returns the delivery with its event and
	// endpoint.
	LicenseDeliveryWork(ctx context.Context, id string) (DeliveryWork, error)
	// RecordLicenseAttempt records an attempt of a delivery and, if it
	// is still pending, sets its status; with a disable reason it also
	// disables the endpoint and cancels its pending deliveries. An
	// attempt of a delivery no longer pending is recorded too, and the
	// answer is ErrConflict.
	RecordLicenseAttempt(ctx context.Context, id string, a StoredAttempt, status, disable string) (StoredDelivery, error)
	// CancelLicenseDelivery ends a pending delivery without an attempt.
	CancelLicenseDelivery(ctx context.Context, id, status, reason string) error
	// UnqueuedLicenseDeliveries returns up to limit pending deliveries
	// whose job was never inserted, oldest first.
	UnqueuedLicenseDeliveries(ctx context.Context, limit int) ([]string, error)
	// MarkLicenseDeliveriesQueued records that the deliveries' jobs were
	// inserted.
	MarkLicenseDeliveriesQueued(ctx context.Context, ids []string, at time.Time) error
	// ListLicenseDeliveries returns up to limit deliveries to the
	// endpoint, newest first, after the cursor (zero: from the newest),
	// with their attempts.
	ListLicenseDeliveries(ctx context.Context, webhookID string, after DeliveryCursor, limit int) ([]StoredDelivery, error)
	// PruneLicenseEvents deletes the events created before the time that
	// no delivery still waits for and returns how many it deleted.
	PruneLicenseEvents(ctx context.Context, before time.Time) (int64, error)
}

// Tx is a write transaction over the licensing tables (Store.InLicensingTx):
// the steps of an activation or a Licensing API call that must happen
// together. The rows it locks (LockEntitlement, ActivationForUpdate,
// ChainState) stay locked until it ends.
type Tx interface {
	// LockEntitlement reads the entitlement and locks it, so that seat
	// counts and feature usage are checked and changed by one
	// transaction at a time.
	LockEntitlement(ctx context.Context, id string) (StoredEntitlement, error)
	// Entitlement reads the entitlement without locking it.
	Entitlement(ctx context.Context, id string) (StoredEntitlement, error)
	Tenant(ctx context.Context, id string) (Tenant, error)
	// ActivationForUpdate reads the activation and locks it.
	ActivationForUpdate(ctx context.Context, id string) (StoredActivation, error)
	// ChainState reads the activation (locked), its entitlement, its
	// tenant's status and the answer stored under keyHash ("" for none).
	ChainState(ctx context.Context, activationID, keyHash string) (ChainState, error)

	// ExpireLeases marks the entitlement's active activations whose lease
	// ended at or before now as expired, which frees their seats.
	ExpireLeases(ctx context.Context, entitlementID string, now time.Time) error
	// ExpireLapsedLeases is ExpireLeases that returns the activations it
	// expired.
	ExpireLapsedLeases(ctx context.Context, entitlementID string, now time.Time) ([]StoredActivation, error)
	// ActiveSeat returns the active activation of the seat.
	ActiveSeat(ctx context.Context, entitlementID, seatID string) (StoredActivation, error)
	// CountActiveSeats counts the entitlement's active activations whose
	// lease runs after now.
	CountActiveSeats(ctx context.Context, entitlementID string, now time.Time) (int, error)
	// InsertActivation stores a new activation, with a new ID unless a.ID
	// is set (ErrConflict when its seat is active).
	InsertActivation(ctx context.Context, a StoredActivation) (StoredActivation, error)
	// UpdateActivation overwrites the activation's seat name,
	// fingerprint, token, nonce hash, lease, status and times.
	UpdateActivation(ctx context.Context, a StoredActivation) error
	// RotateActivation sets the activation's nonce hash, token, lease and
	// refresh time from a if its nonce hash still is oldHash and it is
	// active, and reports whether it did.
	RotateActivation(ctx context.Context, a StoredActivation, oldHash string) (bool, error)
	// PutIdempotentAnswer stores the answer; a second one under the same
	// key is ErrConflict.
	PutIdempotentAnswer(ctx context.Context, a IdempotentAnswer) error

	// FeatureInUse sums the checkouts of the feature by the entitlement's
	// active activations whose lease runs after now.
	FeatureInUse(ctx context.Context, entitlementID, feature string, now time.Time) (int, error)
	// FeatureUsage returns the activation's checkouts and tracked usage
	// of the feature (zero when it never used it).
	FeatureUsage(ctx context.Context, activationID, feature string) (int, int64, error)
	// AddFeatureUsage adds checkedOut to the activation's checkouts of
	// the feature and tracked to its tracked usage (saturating at the
	// largest int64), and returns the new values.
	AddFeatureUsage(ctx context.Context, activationID, feature string, checkedOut int, tracked int64) (int, int64, error)

	// UseOfflineRequest records the request ID as used (ErrConflict the
	// second time); the record goes away if the transaction rolls back.
	UseOfflineRequest(ctx context.Context, requestID, tenantID string, at time.Time) error
	// PutOfflineActivation marks the activation as offline, replacing
	// what an earlier offline activation of the seat stored.
	PutOfflineActivation(ctx context.Context, a OfflineActivation) error
	// OfflineActivation returns the offline mark of the activation
	// (ErrNotFound when it was not taken offline).
	OfflineActivation(ctx context.Context, activationID string) (OfflineActivation, error)

	EventTx
	// AddExpiryNotice records that the entitlement was announced as
	// expiring at expiresAt, and reports whether it was new.
	AddExpiryNotice(ctx context.Context, entitlementID string, expiresAt, at time.Time) (bool, error)
}

// EventTx is the part of a write transaction that writes webhook events
// with the effect they report: a Tx, or the transaction of another
// domain's store on the same database (a support ticket's change), which
// announces its effects through Outbox.
type EventTx interface {
	// ActiveLicenseWebhooks returns the tenant's active endpoints.
	ActiveLicenseWebhooks(ctx context.Context, tenantID string) ([]StoredWebhook, error)
	// InsertLicenseEvent stores the event and a pending delivery of it
	// to each of the endpoints, and returns the deliveries' IDs.
	InsertLicenseEvent(ctx context.Context, ev StoredEvent, webhookIDs []string) ([]string, error)
}

// Statuses of tenants, entitlements, activations and webhooks.
const (
	StatusActive      = "active"
	StatusSuspended   = "suspended"
	StatusExpired     = "expired"     // an activation whose lease ran out
	StatusDeactivated = "deactivated" // an activation freed by its client
	WebhookDisabled   = "disabled"    // an endpoint that answered 410 Gone
)

// Statuses of deliveries.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// StoredEntitlement is an entitlement as the Store keeps it: the
// Entitlement with its lease as a duration, its features encoded and the
// hash of its activation code.
type StoredEntitlement struct {
	ID        string
	TenantID  string
	ProductID string
	Seats     int
	ExpiresAt time.Time // zero: never
	Lease     time.Duration
	Features  string // the JSON object of Entitlement.Features
	Status    string // StatusActive or StatusSuspended
	// CodeHash is the keyed hash of the activation code; the store never
	// sees the code.
	CodeHash  string
	CreatedAt time.Time
}

// StoredEntitlementChange is what Store.UpdateEntitlement changes: nil
// fields stay. A zero *ExpiresAt removes the expiry; Features is the
// whole JSON object.
type StoredEntitlementChange struct {
	Seats     *int
	ExpiresAt *time.Time
	Lease     *time.Duration
	Features  *string
}

// StoredActivation is a seat taken on an entitlement, as the Store keeps
// it (Activation is what the client sees of it).
type StoredActivation struct {
	ID             string
	EntitlementID  string
	SeatID         string
	SeatName       string
	Fingerprint    string
	TokenJTI       string
	NonceHash      string
	LeaseExpiresAt time.Time
	Status         string // StatusActive, StatusExpired or StatusDeactivated
	CreatedAt      time.Time
	RefreshedAt    time.Time
	DeactivatedAt  time.Time
}

// IdempotentAnswer is the stored answer to a Licensing API call made with
// an Idempotency-Key.
type IdempotentAnswer struct {
	ActivationID  string
	KeyHash       string
	RequestHash   string
	PrevNonceHash string
	Status        int
	Sealed        string
	CreatedAt     time.Time
}

// ChainState is what a call of the nonce chain reads, in one query: the
// activation, its entitlement, the status of the entitlement's tenant,
// and the answer stored under the call's idempotency key (nil for none).
type ChainState struct {
	Activation   StoredActivation
	Entitlement  StoredEntitlement
	TenantStatus string
	Answer       *IdempotentAnswer
}

// Key is licensing server key material of a kind (KeySigning,
// KeySecret). At most one key of each kind is active (not retired).
type Key struct {
	ID        string
	Kind      string
	Material  string
	CreatedAt time.Time
	RetiredAt time.Time
}

// Kinds of Key.
const (
	KeySigning = "signing"
	// KeySecret is the legacy secret of an installation made before the
	// secret left the database (keys.go).
	KeySecret = "secret"
)

// SealedValue is one value the Service keeps sealed, as
// Store.ResealLicensing hands it over to be sealed again.
type SealedValue struct {
	Kind string // SealedOfflineKey, SealedWebhookKey or SealedWebhookSecret
	// OfflineKey is the row of a SealedOfflineKey (SealedPrivate is Sealed).
	OfflineKey OfflineKey
	// TenantID owns a SealedWebhookKey; WebhookID a SealedWebhookSecret.
	TenantID, WebhookID string
	Sealed              string
}

// Kinds of SealedValue.
const (
	SealedOfflineKey    = "offline-key"
	SealedWebhookKey    = "webhook-key"
	SealedWebhookSecret = "webhook-secret"
)

// OfflineKey is a tenant's offline activation key: an HPKE KEM key
// (OfflineKeyX25519, OfflineKeyMLKEM768X25519) or the Ed25519 key that
// signs license files (OfflineKeyEd25519). SealedPrivate is the private
// key sealed by the Service; the store never sees it in the clear.
type OfflineKey struct {
	ID            string
	TenantID      string
	Kind          string
	PublicKey     string
	SealedPrivate string
	CreatedAt     time.Time
	RetiredAt     time.Time
}

// Kinds of OfflineKey.
const (
	OfflineKeyX25519         = "x25519"
	OfflineKeyMLKEM768X25519 = "mlkem768-x25519"
	OfflineKeyEd25519        = "ed25519"
)

// OfflineActivation marks an activation taken by an offline request.
type OfflineActivation struct {
	ActivationID string
	// SecretHash is the keyed hash of the client's proof of possession,
	// which refresh and deactivation requests present.
	SecretHash    string
	ClientKeyHash string
	CreatedAt     time.Time
}

// WebhookKey is a tenant's Ed25519 key pair for v1a signatures. The
// private key is sealed by the Service before the store gets it.
type WebhookKey struct {
	TenantID   string
	PublicKey  string // whpk_…
	PrivateKey string // sealed
	CreatedAt  time.Time
}

// StoredWebhook is an endpoint of a tenant as the Store keeps it (Webhook
// is what the Management API shows of it).
type StoredWebhook struct {
	ID       string
	TenantID string
	URL      string
	// Events are the event types it receives; empty for every type.
	Events []string
	// Secret is the sealed v1 HMAC secret, "" for none.
	Secret         string
	Status         string // StatusActive or WebhookDisabled
	DisabledReason string
	CreatedAt      time.Time
	DisabledAt     time.Time
}

// Wants reports whether the endpoint receives events of the type.
func (w StoredWebhook) Wants(eventType string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, eventType)
}

// StoredEvent is an event in the outbox: its ID is the webhook-id, its
// payload the exact body sent.
type StoredEvent struct {
	ID        string
	TenantID  string
	Type      string
	Payload   string
	CreatedAt time.Time
}

// StoredDelivery is the delivery of an event to one endpoint, as the
// Store keeps it (Delivery is what the Management API shows of it).
type StoredDelivery struct {
	ID            string
	EventID       string
	WebhookID     string
	EventType     string // read from the event
	Status        string // DeliveryPending, DeliveryDelivered, DeliveryFailed, DeliveryCancelled
	Attempts      int
	LastStatus    int // HTTP status of the last attempt, 0 for none
	LastError     string
	QueuedAt      time.Time
	LastAttemptAt time.Time
	DeliveredAt   time.Time
	CreatedAt     time.Time
	// AttemptLog is filled by Store.ListLicenseDeliveries, oldest first.
	AttemptLog []StoredAttempt
}

// StoredAttempt is one attempt of a delivery, as the Store keeps it.
type StoredAttempt struct {
	Attempt  int
	At       time.Time
	Status   int // HTTP status, 0 when there was no answer
	Outcome  string
	Error    string
	Duration time.Duration
}

// DeliveryWork is what one attempt of a delivery needs.
type DeliveryWork struct {
	Delivery StoredDelivery
	Event    StoredEvent
	Webhook  StoredWebhook
}

// DeliveryCursor is a position in a list of deliveries, newest first.
type DeliveryCursor struct {
	CreatedAt time.Time
	ID        string
}
