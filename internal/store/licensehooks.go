package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/licensing"
)

// Webhooks for licensing events: the tables of migration 0010. Package
// licensing owns what goes in them (events.go); the store keeps the
// delivery state durable.

// MaxDeliveryPage is the largest page ListLicenseDeliveries returns.
const MaxDeliveryPage = 1000

// EnsureWebhookKey returns the tenant's key, storing k first if it has
// none. Of processes racing, one wins and all get its key. An unknown
// tenant is ErrNotFound.
func (d *DB) EnsureWebhookKey(ctx context.Context, k licensing.WebhookKey) (licensing.WebhookKey, error) {
	if k.TenantID == "" || k.PublicKey == "" || k.PrivateKey == "" {
		return licensing.WebhookKey{}, fmt.Errorf("%w: a webhook key needs a tenant and both keys", ErrInvalid)
	}
	_, err := d.exec(ctx, "INSERT INTO license_webhook_keys (tenant_id, public_key, private_key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
		k.TenantID, k.PublicKey, k.PrivateKey, d.timeArg(now()))
	if isForeignKeyViolation(err) {
		return licensing.WebhookKey{}, fmt.Errorf("tenant %q: %w", k.TenantID, ErrNotFound)
	}
	if err != nil {
		return licensing.WebhookKey{}, fmt.Errorf("store: store webhook key: %w", err)
	}
	var got licensing.WebhookKey
	err = d.writeRow(ctx, "SELECT tenant_id, public_key, private_key, created_at FROM license_webhook_keys WHERE tenant_id = ?", k.TenantID).
		Scan(&got.TenantID, &got.PublicKey, &got.PrivateKey, timeCol{&got.CreatedAt})
	if err != nil {
		return licensing.WebhookKey{}, fmt.Errorf("store: read webhook key: %w", err)
	}
	return got, nil
}

// GetWebhookKey returns the tenant's key, or ErrNotFound if it has none yet.
func (d *DB) GetWebhookKey(ctx context.Context, tenantID string) (licensing.WebhookKey, error) {
	return getRow(ctx, d, "webhook key of tenant", tenantID, func(r rowScanner) (licensing.WebhookKey, error) {
		var k licensing.WebhookKey
		err := r.Scan(&k.TenantID, &k.PublicKey, &k.PrivateKey, timeCol{&k.CreatedAt})
		return k, err
	}, "SELECT tenant_id, public_key, private_key, created_at FROM license_webhook_keys WHERE tenant_id = ?", tenantID)
}

const webhookCols = "id, tenant_id, url, events, secret, status, disabled_reason, created_at, disabled_at"

func scanWebhook(row rowScanner) (licensing.StoredWebhook, error) {
	var (
		w      licensing.StoredWebhook
		events string
	)
	err := row.Scan(&w.ID, &w.TenantID, &w.URL, &events, &w.Secret, &w.Status, &w.DisabledReason, timeCol{&w.CreatedAt}, timeCol{&w.DisabledAt})
	w.Events = eventList(events)
	return w, err
}

// eventList reads the stored event filter; nil for every type.
func eventList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// CreateLicenseWebhook stores a new, active endpoint, with a new ID unless
// w.ID is set. A
// tenant may have at most max endpoints (ErrConflict beyond); an unknown
// tenant is ErrNotFound.
func (d *DB) CreateLicenseWebhook(ctx context.Context, w licensing.StoredWebhook, max int) (licensing.StoredWebhook, error) {
	if w.TenantID == "" || w.URL == "" {
		return licensing.StoredWebhook{}, fmt.Errorf("%w: a webhook needs a tenant and a URL", ErrInvalid)
	}
	for _, e := range w.Events {
		if e == "" || strings.ContainsAny(e, " \t\r\n") {
			return licensing.StoredWebhook{}, fmt.Errorf("%w: event type %q", ErrInvalid, e)
		}
	}
	if w.ID == "" {
		w.ID = newID()
	}
	w.Status, w.DisabledReason, w.CreatedAt, w.DisabledAt = licensing.StatusActive, "", now(), time.Time{}
	err := d.inLicensingTx(ctx, func(t *LicensingTx) error {
		// Lock the tenant's row so that two creations count one after the other.
		var id string
		err := t.queryRow(ctx, "SELECT id FROM licensing_tenants WHERE id = ?"+t.forUpdate(), w.TenantID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("tenant %q: %w", w.TenantID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: create webhook: %w", err)
		}
		var n int
		if err := t.queryRow(ctx, "SELECT count(*) FROM license_webhooks WHERE tenant_id = ?", w.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("store: create webhook: %w", err)
		}
		if n >= max {
			return fmt.Errorf("%w: tenant %q has %d webhooks, the most allowed; delete one first", ErrConflict, w.TenantID, n)
		}
		_, err = t.exec(ctx, "INSERT INTO license_webhooks ("+webhookCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
			w.ID, w.TenantID, w.URL, strings.Join(w.Events, " "), w.Secret, w.Status, w.DisabledReason, t.d.timeArg(w.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: create webhook: %w", err)
		}
		return nil
	})
	if err != nil {
		return licensing.StoredWebhook{}, err
	}
	return w, nil
}

// GetLicenseWebhook returns the tenant's endpoint, or ErrNotFound (also
// for another tenant's endpoint).
func (d *DB) GetLicenseWebhook(ctx context.Context, tenantID, id string) (licensing.StoredWebhook, error) {
	return getRow(ctx, d, "webhook", id, scanWebhook, "SELECT "+webhookCols+" FROM license_webhooks WHERE id = ? AND tenant_id = ?", id, tenantID)
}

// ListLicenseWebhooks returns the tenant's endpoints, oldest first.
func (d *DB) ListLicenseWebhooks(ctx context.Context, tenantID string) ([]licensing.StoredWebhook, error) {
	return listRows(ctx, d, "webhooks", scanWebhook, "SELECT "+webhookCols+" FROM license_webhooks WHERE tenant_id = ? ORDER BY created_at, id", tenantID)
}

// DeleteLicenseWebhook deletes the tenant's endpoint with its deliveries
// (ErrNotFound if there is none): their jobs then find nothing to do.
func (d *DB) DeleteLicenseWebhook(ctx context.Context, tenantID, id string) error {
	res, err := d.exec(ctx, "DELETE FROM license_webhooks WHERE id = ? AND tenant_id = ?", id, tenantID)
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	} else if n == 0 {
		return fmt.Errorf("webhook %q: %w", id, ErrNotFound)
	}
	return nil
}

// ActiveLicenseWebhooks returns the tenant's active endpoints inside the
// transaction: those an event written in it goes to.
func (t *LicensingTx) ActiveLicenseWebhooks(ctx context.Context, tenantID string) ([]licensing.StoredWebhook, error) {
	rows, err := t.tx.QueryContext(ctx, t.d.rebind("SELECT "+webhookCols+" FROM license_webhooks WHERE tenant_id = ? AND status = ? ORDER BY created_at, id"), tenantID, licensing.StatusActive)
	if err != nil {
		return nil, fmt.Errorf("store: list webhooks: %w", err)
	}
	defer rows.Close()
	var out []licensing.StoredWebhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list webhooks: %w", err)
	}
	return out, nil
}

// InsertLicenseEvent stores the event and a pending delivery of it to
// each of the endpoints, in the transaction of the effect the event
// reports, and returns the deliveries' IDs.
func (t *LicensingTx) InsertLicenseEvent(ctx context.Context, ev licensing.StoredEvent, webhookIDs []string) ([]string, error) {
	if ev.ID == "" || ev.TenantID == "" || ev.Type == "" || ev.Payload == "" {
		return nil, fmt.Errorf("%w: an event needs an id, a tenant, a type and a payload", ErrInvalid)
	}
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = now()
	}
	_, err := t.exec(ctx, "INSERT INTO license_webhook_events (id, tenant_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
		ev.ID, ev.TenantID, ev.Type, ev.Payload, t.d.timeArg(ev.CreatedAt))
	if err != nil {
		return nil, fmt.Errorf("store: insert event: %w", err)
	}
	ids := make([]string, len(webhookIDs))
	for i, w := range webhookIDs {
		ids[i] = newID()
		_, err := t.exec(ctx, "INSERT INTO license_webhook_deliveries (id, event_id, webhook_id, status, created_at) VALUES (?, ?, ?, ?, ?)",
			ids[i], ev.ID, w, licensing.DeliveryPending, t.d.timeArg(ev.CreatedAt))
		if err != nil {
			return nil, fmt.Errorf("store: insert delivery: %w", err)
		}
	}
	return ids, nil
}

// ExpireLapsedLeases marks the entitlement's active activations whose
// lease ended at or before now as expired, as ExpireLeases does, and
// returns them.
func (t *LicensingTx) ExpireLapsedLeases(ctx context.Context, entitlementID string, now time.Time) ([]licensing.StoredActivation, error) {
	rows, err := t.tx.QueryContext(ctx, t.d.rebind("UPDATE licensing_activations SET status = ? WHERE entitlement_id = ? AND status = ? AND lease_expires_at <= ? RETURNING "+activationCols),
		licensing.StatusExpired, entitlementID, licensing.StatusActive, t.d.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("store: expire leases: %w", err)
	}
	defer rows.Close()
	var out []licensing.StoredActivation
	for rows.Next() {
		a, err := scanActivation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: expire leases: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: expire leases: %w", err)
	}
	return out, nil
}

// AddExpiryNotice records that the entitlement was announced as expiring
// at expiresAt, and reports whether it was new (false: announced before).
func (t *LicensingTx) AddExpiryNotice(ctx context.Context, entitlementID string, expiresAt, at time.Time) (bool, error) {
	res, err := t.exec(ctx, "INSERT INTO license_webhook_notices (entitlement_id, expires_at, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
		entitlementID, t.d.timeArg(expiresAt), t.d.timeArg(at))
	if err != nil {
		return false, fmt.Errorf("store: expiry notice: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: expiry notice: %w", err)
	}
	return n == 1, nil
}

// webhookTenants restricts a query to tenants with an active webhook.
const webhookTenants = "tenant_id IN (SELECT tenant_id FROM license_webhooks WHERE status = 'active')"

// LapsedLeaseEntitlements returns up to limit entitlements, of tenants
// with an active webhook, that have an active activation whose lease
// ended at or before now (seats freed that nobody marked yet).
func (d *DB) LapsedLeaseEntitlements(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return listRows(ctx, d, "lapsed leases", func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT DISTINCT a.entitlement_id FROM licensing_activations a
		JOIN licensing_entitlements e ON e.id = a.entitlement_id
		WHERE a.status = ? AND a.lease_expires_at <= ? AND e.`+webhookTenants+` LIMIT ?`,
		licensing.StatusActive, d.timeArg(now), limit)
}

// ExpiringEntitlements returns up to limit active entitlements, of
// tenants with an active webhook, that expire after now and at or before
// until and were not announced for that expiry yet.
func (d *DB) ExpiringEntitlements(ctx context.Context, now, until time.Time, limit int) ([]licensing.StoredEntitlement, error) {
	return listRows(ctx, d, "expiring entitlements", scanEntitlement, `SELECT `+entitlementCols+` FROM licensing_entitlements e
		WHERE status = ? AND expires_at > ? AND expires_at <= ? AND `+webhookTenants+`
		AND NOT EXISTS (SELECT 1 FROM license_webhook_notices n WHERE n.entitlement_id = e.id AND n.expires_at = e.expires_at)
		ORDER BY expires_at, id LIMIT ?`, licensing.StatusActive, d.timeArg(now), d.timeArg(until), limit)
}

const deliveryCols = "d.id, d.event_id, d.webhook_id, e.type, d.status, d.attempts, d.last_status, d.last_error, d.queued_at, d.last_attempt_at, d.delivered_at, d.created_at"

func scanDelivery(row rowScanner) (licensing.StoredDelivery, error) {
	var dl licensing.StoredDelivery
	err := row.Scan(&dl.ID, &dl.EventID, &dl.WebhookID, &dl.EventType, &dl.Status, &dl.Attempts, &dl.LastStatus, &dl.LastError,
		timeCol{&dl.QueuedAt}, timeCol{&dl.LastAttemptAt}, timeCol{&dl.DeliveredAt}, timeCol{&dl.CreatedAt})
	return dl, err
}

// LicenseDeliveryWork returns the delivery with its event and endpoint,
// or ErrNotFound (its endpoint was deleted, and it with it).
func (d *DB) LicenseDeliveryWork(ctx context.Context, id string) (licensing.DeliveryWork, error) {
	var w licensing.DeliveryWork
	var events string
	err := d.queryRow(ctx, `SELECT `+deliveryCols+`, e.tenant_id, e.payload, e.created_at,
		w.tenant_id, w.url, w.events, w.secret, w.status, w.disabled_reason, w.created_at, w.disabled_at
		FROM license_webhook_deliveries d
		JOIN license_webhook_events e ON e.id = d.event_id
		JOIN license_webhooks w ON w.id = d.webhook_id
		WHERE d.id = ?`, id).Scan(
		&w.Delivery.ID, &w.Delivery.EventID, &w.Delivery.WebhookID, &w.Delivery.EventType, &w.Delivery.Status, &w.Delivery.Attempts,
		&w.Delivery.LastStatus, &w.Delivery.LastError, timeCol{&w.Delivery.QueuedAt}, timeCol{&w.Delivery.LastAttemptAt},
		timeCol{&w.Delivery.DeliveredAt}, timeCol{&w.Delivery.CreatedAt},
		&w.Event.TenantID, &w.Event.Payload, timeCol{&w.Event.CreatedAt},
		&w.Webhook.TenantID, &w.Webhook.URL, &events, &w.Webhook.Secret, &w.Webhook.Status, &w.Webhook.DisabledReason,
		timeCol{&w.Webhook.CreatedAt}, timeCol{&w.Webhook.DisabledAt})
	if errors.Is(err, sql.ErrNoRows) {
		return licensing.DeliveryWork{}, fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return licensing.DeliveryWork{}, fmt.Errorf("store: get delivery %q: %w", id, err)
	}
	w.Event.ID, w.Event.Type = w.Delivery.EventID, w.Delivery.EventType
	w.Webhook.ID, w.Webhook.Events = w.Delivery.WebhookID, eventList(events)
	return w, nil
}

// RecordLicenseAttempt records an attempt of a delivery and, if it is
// still pending, sets its status (licensing.DeliveryPending to try again,
// or a final one). With a disable reason it also disables the endpoint and
// cancels its other pending deliveries, in the same transaction. An
// attempt of a delivery that is no longer pending (a duplicate job
// finished it, or its endpoint was disabled while the request was in
// flight) is recorded too, and the answer is ErrConflict.
func (d *DB) RecordLicenseAttempt(ctx context.Context, id string, a licensing.StoredAttempt, status, disable string) (licensing.StoredDelivery, error) {
	switch status {
	case licensing.DeliveryPending, licensing.DeliveryDelivered, licensing.DeliveryFailed, licensing.DeliveryCancelled:
	default:
		return licensing.StoredDelivery{}, fmt.Errorf("%w: delivery status %q", ErrInvalid, status)
	}
	var (
		out     licensing.StoredDelivery
		settled bool
	)
	err := d.inLicensingTx(ctx, func(t *LicensingTx) error {
		// Lock the endpoint before its delivery: attempts of one endpoint
		// that end at once (several in flight when it answers 410) then
		// take their locks in one order. Locking the delivery first let
		// two of them deadlock on PostgreSQL, each holding its delivery
		// and waiting for the other's, and lose an attempt.
		var webhookID, was string
		err := t.queryRow(ctx, "SELECT webhook_id FROM license_webhook_deliveries WHERE id = ?", id).Scan(&webhookID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		var locked string
		if err := t.queryRow(ctx, "SELECT id FROM license_webhooks WHERE id = ?"+t.forUpdate(), webhookID).Scan(&locked); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		err = t.queryRow(ctx, `UPDATE license_webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?,
			last_attempt_at = ? WHERE id = ? RETURNING attempts, webhook_id, status`,
			a.Status, a.Error, t.d.timeArg(a.At), id).Scan(&a.Attempt, &webhookID, &was)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		_, err = t.exec(ctx, "INSERT INTO license_webhook_attempts (delivery_id, attempt, at, status, outcome, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
			id, a.Attempt, t.d.timeArg(a.At), a.Status, a.Outcome, a.Error, a.Duration.Milliseconds())
		if err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		settled = was != licensing.DeliveryPending
		if !settled {
			var delivered any
			if status == licensing.DeliveryDelivered {
				delivered = t.d.timeArg(a.At)
			}
			if _, err := t.exec(ctx, "UPDATE license_webhook_deliveries SET status = ?, delivered_at = ? WHERE id = ?", status, delivered, id); err != nil {
				return fmt.Errorf("store: record attempt: %w", err)
			}
		}
		if disable != "" {
			if _, err := t.exec(ctx, "UPDATE license_webhooks SET status = ?, disabled_reason = ?, disabled_at = ? WHERE id = ? AND status = ?",
				licensing.WebhookDisabled, disable, t.d.timeArg(a.At), webhookID, licensing.StatusActive); err != nil {
				return fmt.Errorf("store: disable webhook: %w", err)
			}
			if _, err := t.exec(ctx, "UPDATE license_webhook_deliveries SET status = ?, last_error = ? WHERE webhook_id = ? AND status = ?",
				licensing.DeliveryCancelled, "the endpoint was disabled: "+disable, webhookID, licensing.DeliveryPending); err != nil {
				return fmt.Errorf("store: cancel deliveries: %w", err)
			}
		}
		out, err = scanDelivery(t.queryRow(ctx, "SELECT "+deliveryCols+" FROM license_webhook_deliveries d JOIN license_webhook_events e ON e.id = d.event_id WHERE d.id = ?", id))
		if err != nil {
			return fmt.Errorf("store: record attempt: %w", err)
		}
		return nil
	})
	if err == nil && settled {
		err = fmt.Errorf("%w: delivery %q was no longer pending; attempt recorded", ErrConflict, id)
	}
	return out, err
}

// CancelLicenseDelivery ends a pending delivery without an attempt (its
// endpoint was disabled, or its attempts ran out), saying why.
func (d *DB) CancelLicenseDelivery(ctx context.Context, id, status, reason string) error {
	if status != licensing.DeliveryFailed && status != licensing.DeliveryCancelled {
		return fmt.Errorf("%w: delivery status %q", ErrInvalid, status)
	}
	_, err := d.exec(ctx, "UPDATE license_webhook_deliveries SET status = ?, last_error = ? WHERE id = ? AND status = ?", status, reason, id, licensing.DeliveryPending)
	if err != nil {
		return fmt.Errorf("store: cancel delivery: %w", err)
	}
	return nil
}

// UnqueuedLicenseDeliveries returns up to limit pending deliveries whose
// job was never inserted (the process stopped between the commit of the
// event and the insert of its jobs), oldest first.
func (d *DB) UnqueuedLicenseDeliveries(ctx context.Context, limit int) ([]string, error) {
	return listRows(ctx, d, "unqueued deliveries", func(r rowScanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, "SELECT id FROM license_webhook_deliveries WHERE status = ? AND queued_at IS NULL ORDER BY created_at, id LIMIT ?", licensing.DeliveryPending, limit)
}

// MarkLicenseDeliveriesQueued records that the deliveries' jobs were
// inserted.
func (d *DB) MarkLicenseDeliveriesQueued(ctx context.Context, ids []string, at time.Time) error {
	for _, id := range ids {
		if _, err := d.exec(ctx, "UPDATE license_webhook_deliveries SET queued_at = ? WHERE id = ? AND queued_at IS NULL", d.timeArg(at), id); err != nil {
			return fmt.Errorf("store: mark delivery queued: %w", err)
		}
	}
	return nil
}

// ListLicenseDeliveries returns up to limit deliveries to the endpoint,
// newest first, after the cursor (zero: from the newest), with their
// attempts.
func (d *DB) ListLicenseDeliveries(ctx context.Context, webhookID string, after licensing.DeliveryCursor, limit int) ([]licensing.StoredDelivery, error) {
	if limit < 1 || limit > MaxDeliveryPage {
		return nil, fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalid, limit, MaxDeliveryPage)
	}
	q := "SELECT " + deliveryCols + " FROM license_webhook_deliveries d JOIN license_webhook_events e ON e.id = d.event_id WHERE d.webhook_id = ?"
	args := []any{webhookID}
	if after.ID != "" {
		q += " AND (d.created_at < ? OR (d.created_at = ? AND d.id < ?))"
		args = append(args, d.timeArg(after.CreatedAt), d.timeArg(after.CreatedAt), after.ID)
	}
	ds, err := listRows(ctx, d, "deliveries", scanDelivery, q+" ORDER BY d.created_at DESC, d.id DESC LIMIT ?", append(args, limit)...)
	if err != nil || len(ds) == 0 {
		return ds, err
	}
	byID := make(map[string]int, len(ds))
	ph := make([]string, len(ds))
	ids := make([]any, len(ds))
	for i, dl := range ds {
		byID[dl.ID], ph[i], ids[i] = i, "?", dl.ID
	}
	type row struct {
		id string
		a  licensing.StoredAttempt
	}
	atts, err := listRows(ctx, d, "delivery attempts", func(r rowScanner) (row, error) {
		var (
			x  row
			ms int64
		)
		err := r.Scan(&x.id, &x.a.Attempt, timeCol{&x.a.At}, &x.a.Status, &x.a.Outcome, &x.a.Error, &ms)
		x.a.Duration = time.Duration(ms) * time.Millisecond
		return x, err
	}, "SELECT delivery_id, attempt, at, status, outcome, error, duration_ms FROM license_webhook_attempts WHERE delivery_id IN ("+strings.Join(ph, ", ")+") ORDER BY delivery_id, attempt", ids...)
	if err != nil {
		return nil, err
	}
	for _, x := range atts {
		i := byID[x.id]
		ds[i].AttemptLog = append(ds[i].AttemptLog, x.a)
	}
	return ds, nil
}

// PruneLicenseEvents deletes the events created before the time that no
// delivery still waits for, with their deliveries and attempts, and
// returns how many events it deleted; in batches (pruneInBatches).
func (d *DB) PruneLicenseEvents(ctx context.Context, before time.Time) (int64, error) {
	return d.pruneInBatches(ctx, "events", "license_webhook_events", "id", `created_at < ? AND NOT EXISTS
		(SELECT 1 FROM license_webhook_deliveries d WHERE d.event_id = license_webhook_events.id AND d.status = ?)`,
		d.timeArg(before), licensing.DeliveryPending)
}
