package licensing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// Outbox announces another domain's changes to a tenant as webhook events
// (a support ticket opened, approved…), through the tenant's endpoints
// for licensing events and with their machinery: the event and its
// deliveries are written in the transaction of the change (any EventTx on
// the same database), and their jobs are queued once it commits, or by
// SweepWebhooks if the process stops in between. One Outbox serves one
// transaction:
//
//	out := lic.Outbox()
//	err := db.InTicketTx(ctx, func(tx reports.TicketTx) error {
//		… the change …
//		return out.Emit(ctx, tx, webhooks.EventTicketOpened, data, now)
//	})
//	if err == nil {
//		out.Queue(ctx) // after the commit, never inside the transaction
//	}
type Outbox struct{ ev *events }

// Outbox returns an outbox for one transaction.
func (s *Service) Outbox() *Outbox { return &Outbox{ev: s.events()} }

// Emit writes an event of the type, one of webhooks.EventTypes, for the
// endpoints of data.TenantID that want it; with none it writes nothing.
func (o *Outbox) Emit(ctx context.Context, tx EventTx, typ string, data webhooks.Data, at time.Time) error {
	switch {
	case !slices.Contains(webhooks.EventTypes, typ):
		return fmt.Errorf("licensing: emit: unknown event type %q", typ)
	case data.TenantID == "":
		return errors.New("licensing: emit: an event needs a tenant")
	}
	return o.ev.emit(ctx, tx, typ, data, at)
}

// Queue inserts the jobs of the deliveries Emit wrote. Call it only once
// their transaction committed; a failure is logged, and SweepWebhooks
// queues them later.
func (o *Outbox) Queue(ctx context.Context) { o.ev.queue(ctx) }
