package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Idempotency keys of API writes (migration 0007). A client that retries
// a write with the same Idempotency-Key gets the first answer again
// instead of a second effect. The server claims the key before it runs
// the request (ClaimIdempotencyKey), so that a concurrent duplicate finds
// it in progress, then stores the answer (CompleteIdempotencyKey) or, when
// the request should be allowed to run again, releases the key
// (ReleaseIdempotencyKey).

// Idempotency is a stored idempotency key.
type Idempotency struct {
	ClientID    string
	Key         string
	RequestHash string // what the key was first used for
	// Status is the stored answer's HTTP status; 0 while the first
	// request is still running.
	Status      int
	ContentType string
	Location    string
	Body        []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// InProgress reports whether the first request with the key is running.
func (i Idempotency) InProgress() bool { return i.Status == 0 }

const idempotencyCols = "client_id, idem_key, request_hash, status, content_type, location, body, created_at, expires_at"

func scanIdempotency(row rowScanner) (Idempotency, error) {
	var i Idempotency
	err := row.Scan(&i.ClientID, &i.Key, &i.RequestHash, &i.Status, &i.ContentType, &i.Location, &i.Body,
		timeCol{&i.CreatedAt}, timeCol{&i.ExpiresAt})
	return i, err
}

// ClaimIdempotencyKey claims the client's key for a request with the given
// hash, to expire after ttl. claimed is true when this call took the key:
// the caller runs the request, then completes or releases the key.
// Otherwise it returns the key as stored: in progress, or completed, for
// a request with the same hash or another.
//
// A key past its expiry is claimed anew, and so is one left in progress
// for longer than stale (its process died before completing it).
func (d *DB) ClaimIdempotencyKey(ctx context.Context, clientID, key, requestHash string, ttl, stale time.Duration) (rec Idempotency, claimed bool, err error) {
	if clientID == "" || key == "" || requestHash == "" || ttl <= 0 || stale <= 0 {
		return Idempotency{}, false, fmt.Errorf("%w: an idempotency key needs a client, a key, a request hash, a TTL and a stale time", ErrInvalid)
	}
	for try := 0; ; try++ {
		t := now()
		rec = Idempotency{ClientID: clientID, Key: key, RequestHash: requestHash, CreatedAt: t, ExpiresAt: t.Add(ttl)}
		res, err := d.exec(ctx, `INSERT INTO idempotency_keys (client_id, idem_key, request_hash, status, created_at, expires_at)
			VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (client_id, idem_key) DO NOTHING`,
			clientID, key, requestHash, d.timeArg(rec.CreatedAt), d.timeArg(rec.ExpiresAt))
		if err != nil {
			return Idempotency{}, false, fmt.Errorf("store: claim idempotency key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Idempotency{}, false, fmt.Errorf("store: claim idempotency key: %w", err)
		} else if n == 1 {
			return rec, true, nil
		}
		// Read on the write pool: another request may have just written it.
		rec, err = scanIdempotency(d.writeRow(ctx, "SELECT "+idempotencyCols+" FROM idempotency_keys WHERE client_id = ? AND idem_key = ?", clientID, key))
		if errors.Is(err, sql.ErrNoRows) && try == 0 {
			continue // released meanwhile
		}
		if errors.Is(err, sql.ErrNoRows) {
			return Idempotency{}, false, fmt.Errorf("idempotency key: %w: released while being claimed; try again", ErrConflict)
		}
		if err != nil {
			return Idempotency{}, false, fmt.Errorf("store: claim idempotency key: %w", err)
		}
		expired := !rec.ExpiresAt.After(t) || (rec.InProgress() && !rec.CreatedAt.After(t.Add(-stale)))
		if !expired || try > 0 {
			return rec, false, nil
		}
		// Expired, or left in progress by a dead process: drop it (unless
		// another request replaced it meanwhile) and claim anew.
		_, err = d.exec(ctx, `DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ? AND created_at = ?
			AND (expires_at <= ? OR (status = 0 AND created_at <= ?))`,
			clientID, key, d.timeArg(rec.CreatedAt), d.timeArg(t), d.timeArg(t.Add(-stale)))
		if err != nil {
			return Idempotency{}, false, fmt.Errorf("store: claim idempotency key: %w", err)
		}
	}
}

// CompleteIdempotencyKey stores the answer to the request that claimed
// the key. ErrConflict if the key is no longer claimed for that request.
func (d *DB) CompleteIdempotencyKey(ctx context.Context, clientID, key, requestHash string, status int, contentType, location string, body []byte) error {
	if status <= 0 {
		return fmt.Errorf("%w: idempotency key: status %d", ErrInvalid, status)
	}
	if body == nil {
		body = []byte{}
	}
	res, err := d.exec(ctx, `UPDATE idempotency_keys SET status = ?, content_type = ?, location = ?, body = ?
		WHERE client_id = ? AND idem_key = ? AND request_hash = ? AND status = 0`,
		status, contentType, location, body, clientID, key, requestHash)
	if err != nil {
		return fmt.Errorf("store: complete idempotency key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: complete idempotency key: %w", err)
	} else if n == 0 {
		return fmt.Errorf("idempotency key: %w: not claimed for this request", ErrConflict)
	}
	return nil
}

// ReleaseIdempotencyKey forgets a key still in progress for the request,
// so that the request may run again with it. Releasing a key that is not
// in progress does nothing.
func (d *DB) ReleaseIdempotencyKey(ctx context.Context, clientID, key, requestHash string) error {
	_, err := d.exec(ctx, "DELETE FROM idempotency_keys WHERE client_id = ? AND idem_key = ? AND request_hash = ? AND status = 0",
		clientID, key, requestHash)
	if err != nil {
		return fmt.Errorf("store: release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes the keys that expired before t, in batches
// (pruneInBatches), and returns how many it deleted.
func (d *DB) PruneIdempotencyKeys(ctx context.Context, t time.Time) (int64, error) {
	return d.pruneInBatches(ctx, "idempotency keys", "idempotency_keys", "client_id, idem_key", "expires_at <= ?", d.timeArg(t))
}
