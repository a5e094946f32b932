package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Webhook deliveries for licensing events: one job per delivery (an event
// to one endpoint), retried with exponential backoff and jitter for about
// three days, and a periodic sweep. The licensing service supplies the
// runner (licensing.Service); the store keeps each delivery's state, so a
// job only says "try this delivery now".

// DeliveryRunner makes delivery attempts and the periodic sweep.
type DeliveryRunner interface {
	// DeliverWebhook makes one attempt; an error asks for another. On the
	// last attempt it records a failure as final and returns nil.
	DeliverWebhook(ctx context.Context, deliveryID string, lastAttempt bool) error
	// SweepWebhooks does the periodic work: lapsed leases, expiring
	// entitlements, deliveries whose job was never inserted.
	SweepWebhooks(ctx context.Context) error
}

// Defaults of the delivery settings of Config.
const (
	DefaultDeliveryMaxAttempts = 10
	DefaultSweepInterval       = time.Minute
	DefaultDeliveryWorkers     = 16
	// DeliveryQueue is the River queue of delivery jobs, apart from the
	// scans so that a slow endpoint never holds up a scan, nor a scan a
	// delivery.
	DeliveryQueue = "license_webhooks"
	// deliveryTimeout bounds one attempt's job (the HTTP request has its
	// own, shorter timeout).
	deliveryTimeout = 2 * time.Minute
)

// deliverySchedule is the wait before attempt n+1 after attempt n failed,
// after the Standard Webhooks example schedule: the ten attempts span a
// little over three days.
var deliverySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// DeliveryBackoff is the default Config.DeliveryBackoff: the schedule's
// wait after the attempt-th failure, ±20% at random so that endpoints
// that failed together are not retried together.
func DeliveryBackoff(attempt int) time.Duration {
	d := deliverySchedule[min(max(attempt, 1), len(deliverySchedule))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) // #nosec G404 -- jitter, not a secret
}

// DeliveryArgs is the job that makes attempts of one delivery.
type DeliveryArgs struct {
	DeliveryID string `json:"delivery_id"`
}

// Kind is the job kind, "license_webhook_delivery".
func (DeliveryArgs) Kind() string { return "license_webhook_delivery" }

// InsertOpts makes a delivery job unique per delivery among jobs waiting,
// running or completed, so that a delivery queued twice (after the
// commit, then by the sweep) runs once.
func (DeliveryArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DeliveryQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// WebhookSweepArgs is the periodic job that runs DeliveryRunner.SweepWebhooks.
type WebhookSweepArgs struct{}

// Kind is the job kind, "license_webhook_sweep".
func (WebhookSweepArgs) Kind() string { return "license_webhook_sweep" }

// InsertOpts keeps one sweep waiting or running at a time.
func (WebhookSweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		},
	}}
}

// addDeliveries registers the delivery workers, their queue and the
// periodic sweep on a River config, for a client with a DeliveryRunner.
func addDeliveries(workers *river.Workers, rc *river.Config, c *Config) {
	if rc.Queues == nil {
		rc.Queues = map[string]river.QueueConfig{}
	}
	rc.Queues[DeliveryQueue] = river.QueueConfig{MaxWorkers: c.DeliveryWorkers}
	river.AddWorker(workers, &deliveryWorker{cfg: c})
	river.AddWorker(workers, &sweepWorker{cfg: c})
	rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(
		river.PeriodicInterval(c.SweepInterval),
		func() (river.JobArgs, *river.InsertOpts) { return WebhookSweepArgs{}, nil },
		&river.PeriodicJobOpts{ID: "license_webhook_sweep", RunOnStart: true},
	))
}

// deliveryDefaults fills the delivery settings of a config.
func (c *Config) deliveryDefaults() {
	if c.DeliveryMaxAttempts == 0 {
		c.DeliveryMaxAttempts = DefaultDeliveryMaxAttempts
	}
	if c.DeliveryBackoff == nil {
		c.DeliveryBackoff = DeliveryBackoff
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.DeliveryWorkers == 0 {
		c.DeliveryWorkers = DefaultDeliveryWorkers
	}
}

func (c Config) validateDeliveries() error {
	switch {
	case c.DeliveryMaxAttempts < 0:
		return fmt.Errorf("jobs: delivery max attempts %d is negative", c.DeliveryMaxAttempts)
	case c.SweepInterval < 0:
		return fmt.Errorf("jobs: sweep interval %s is negative", c.SweepInterval)
	case c.DeliveryWorkers < 0:
		return fmt.Errorf("jobs: delivery workers %d is negative", c.DeliveryWorkers)
	}
	return nil
}

// QueueDeliveries inserts a job for each delivery (it implements
// licensing.DeliveryQueue). A delivery that has a job already keeps it.
func (c *Client) QueueDeliveries(ctx context.Context, deliveryIDs []string) error {
	max := c.cfg.DeliveryMaxAttempts // New applied the default
	for _, id := range deliveryIDs {
		if id == "" {
			return errors.New("jobs: queue delivery: empty delivery ID")
		}
		if _, err := c.river.Insert(ctx, DeliveryArgs{DeliveryID: id}, &river.InsertOpts{MaxAttempts: max}); err != nil {
			return fmt.Errorf("jobs: queue delivery %s: %w", id, err)
		}
	}
	return nil
}

type deliveryWorker struct {
	river.WorkerDefaults[DeliveryArgs]
	cfg *Config
}

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	ctx = context.WithValue(ctx, attemptKey{}, [2]int{job.Attempt, job.MaxAttempts})
	return w.cfg.Deliveries.DeliverWebhook(ctx, job.Args.DeliveryID, job.Attempt >= job.MaxAttempts)
}

func (w *deliveryWorker) NextRetry(job *river.Job[DeliveryArgs]) time.Time {
	return time.Now().Add(w.cfg.DeliveryBackoff(job.Attempt))
}

func (w *deliveryWorker) Timeout(*river.Job[DeliveryArgs]) time.Duration { return deliveryTimeout }

type sweepWorker struct {
	river.WorkerDefaults[WebhookSweepArgs]
	cfg *Config
}

func (w *sweepWorker) Work(ctx context.Context, job *river.Job[WebhookSweepArgs]) error {
	return w.cfg.Deliveries.SweepWebhooks(ctx)
}

func (w *sweepWorker) NextRetry(job *river.Job[WebhookSweepArgs]) time.Time {
	return nextRetry(w.cfg, job.Attempt)
}
