package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
)

// ScanRunner runs one scan; the server supplies it. It is called again
// for the same scan when an attempt fails, after a crash, or if a
// duplicate job slipped through, so it must be idempotent: a scan that
// already succeeded should return nil at once. Wrap an error with
// Permanent to stop the retries.
type ScanRunner interface {
	RunScan(ctx context.Context, scanID string) error
}

// PeriodicRunner runs the periodic job with the name given to AddPeriodic.
type PeriodicRunner interface {
	RunPeriodic(ctx context.Context, name string) error
}

// Config configures a Client. The zero value of a field means its default.
type Config struct {
	// Scans runs scan jobs. Without it the client only inserts jobs for
	// other processes to work.
	Scans ScanRunner
	// Periodic runs periodic jobs. Without it the client does not work
	// them (but, if elected leader, still enqueues those it was given).
	Periodic PeriodicRunner
	// Statuses posts commit statuses (status.go). Without it the client
	// does not work those jobs.
	Statuses StatusRunner
	// Deliveries delivers the licensing events' webhooks and runs their
	// periodic sweep (deliver.go). Without it the client only inserts
	// delivery jobs (QueueDeliveries).
	Deliveries DeliveryRunner
	// DeliveryMaxAttempts bounds a delivery's attempts. Default
	// DefaultDeliveryMaxAttempts, which with DeliveryBackoff spans about
	// three days.
	DeliveryMaxAttempts int
	// DeliveryBackoff is the wait before a delivery's attempt+1 after its
	// attempt-th failed. Default DeliveryBackoff.
	DeliveryBackoff func(attempt int) time.Duration
	// SweepInterval is how often the webhooks' sweep runs. Default
	// DefaultSweepInterval.
	SweepInterval time.Duration
	// DeliveryWorkers is how many deliveries run at once in this process,
	// in a queue of their own (they wait on the network, not the CPU).
	// Default DefaultDeliveryWorkers.
	DeliveryWorkers int
	// Mails sends the secure links' mails (mail.go). Without it the
	// client only inserts mail jobs (QueueMail), which only processes
	// with a mail server work.
	Mails MailRunner
	// MailMaxAttempts bounds a mail's attempts. Default
	// DefaultMailMaxAttempts, which with MailBackoff spans about a day.
	MailMaxAttempts int
	// MailBackoff is the wait before a mail's attempt+1 after its
	// attempt-th failed. Default MailBackoff.
	MailBackoff func(attempt int) time.Duration
	// MailWorkers is how many mails are sent at once in this process.
	// Default DefaultMailWorkers.
	MailWorkers int

	// Workers is how many jobs run at once in this process.
	// Default: the number of CPUs.
	Workers int
	// MaxAttempts is how many times a job runs before it is given up.
	// Default 5.
	MaxAttempts int
	// Backoff returns the wait before attempt+1 after the attempt-th
	// failed. Default: River's, attempt⁴ seconds with 10% jitter (1s, 16s,
	// 81s, 256s, …).
	Backoff func(attempt int) time.Duration
	// JobTimeout bounds one attempt of a job. Default 1h.
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before River's
	// rescuer deems it lost (its process died) and runs it again. It must
	// exceed JobTimeout, or a slow job that is still running elsewhere
	// would run twice at once. Default: JobTimeout + 10m. A single host
	// need not wait that long: see Reclaim.
	RescueAfter time.Duration
	// StopTimeout is the grace period of Stop: running jobs may finish
	// for this long, then their contexts are cancelled (and they are
	// retried later). Default 30s.
	StopTimeout time.Duration
	// PollInterval is how often workers look for jobs when no
	// notification arrives. Default 1s.
	PollInterval time.Duration

	Logger *slog.Logger

	// testOnly skips River's start-up jitter in tests.
	testOnly bool
}

// DefaultConfig returns the defaults that New applies to zero fields.
func DefaultConfig() Config {
	return Config{
		Workers:      runtime.NumCPU(),
		MaxAttempts:  5,
		JobTimeout:   time.Hour,
		StopTimeout:  30 * time.Second,
		PollInterval: time.Second,
	}
}

// works reports whether a client of this configuration works jobs (has a
// runner) rather than only inserting them.
func (c Config) works() bool {
	return c.Scans != nil || c.Periodic != nil || c.Deliveries != nil || c.Statuses != nil || c.Mails != nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.JobTimeout == 0 {
		c.JobTimeout = d.JobTimeout
	}
	if c.RescueAfter == 0 {
		c.RescueAfter = c.JobTimeout + 10*time.Minute
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = d.StopTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.deliveryDefaults()
	c.mailDefaults()
	return c
}

// Validate reports the first invalid field of a config with defaults
// applied.
func (c Config) Validate() error {
	switch {
	case c.Workers < 0:
		return fmt.Errorf("jobs: workers %d is negative", c.Workers)
	case c.MaxAttempts < 0:
		return fmt.Errorf("jobs: max attempts %d is negative", c.MaxAttempts)
	case c.JobTimeout < 0:
		return fmt.Errorf("jobs: job timeout %s is negative", c.JobTimeout)
	case c.RescueAfter != 0 && c.RescueAfter <= c.JobTimeout:
		return fmt.Errorf("jobs: rescue-after %s must exceed the job timeout %s", c.RescueAfter, c.JobTimeout)
	case c.StopTimeout < 0:
		return fmt.Errorf("jobs: stop timeout %s is negative", c.StopTimeout)
	case c.PollInterval < 0:
		return fmt.Errorf("jobs: poll interval %s is negative", c.PollInterval)
	}
	if err := c.validateMails(); err != nil {
		return err
	}
	return c.validateDeliveries()
}

// riverClient is what Client uses of a river.Client, whatever its
// transaction type (pgx.Tx on PostgreSQL, *sql.Tx on SQLite).
type riverClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	PeriodicJobs() *river.PeriodicJobBundle
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// Client inserts jobs into the queue and, when started, works them in this
// process.
type Client struct {
	db    *store.DB
	cfg   Config
	river riverClient
	// exec reaches River's tables through its driver (Reclaim).
	exec riverdriver.Executor
}

// New returns a client of the job queue in db. The queue's tables must be
// migrated (Migrate). cfg may be nil for defaults. Call Start to work jobs.
func New(db *store.DB, cfg *Config) (*Client, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()

	workers := river.NewWorkers()
	if c.Scans != nil {
		river.AddWorker(workers, &scanWorker{runner: c.Scans, cfg: &c})
	}
	if c.Periodic != nil {
		river.AddWorker(workers, &periodicWorker{runner: c.Periodic, cfg: &c})
	}
	if c.Statuses != nil {
		river.AddWorker(workers, &statusWorker{runner: c.Statuses, cfg: &c})
	}
	rc := &river.Config{
		FetchCooldown:        min(100*time.Millisecond, c.PollInterval),
		FetchPollInterval:    c.PollInterval,
		JobTimeout:           c.JobTimeout,
		Logger:               c.Logger,
		MaxAttempts:          c.MaxAttempts,
		RescueStuckJobsAfter: c.RescueAfter,
		// Other processes may work kinds this one does not.
		SkipUnknownJobCheck: true,
		SoftStopTimeout:     c.StopTimeout,
		TestOnly:            c.testOnly,
		Workers:             workers,
	}
	if c.works() {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.Workers}}
	}
	if c.Deliveries != nil {
		addDeliveries(workers, rc, &c)
	}
	if c.Mails != nil {
		addMails(workers, rc, &c)
	}

	var (
		rcl  riverClient
		exec riverdriver.Executor
		err  error
	)
	switch db.Dialect() {
	case store.Postgres:
		d := riverpgxv5.New(db.Pool())
		exec = d.GetExecutor()
		rcl, err = river.NewClient(d, rc)
	case store.SQLite:
		d := riversqlite.New(db.SQL())
		exec = d.GetExecutor()
		rcl, err = river.NewClient(d, rc)
	default:
		err = fmt.Errorf("unsupported dialect %q", db.Dialect())
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: new client: %w", err)
	}
	return &Client{db: db, cfg: c, river: rcl, exec: exec}, nil
}

// Start starts working jobs and maintaining the queue (rescuing lost
// jobs, enqueueing periodic jobs when elected leader). A client without
// runners only inserts: Start does nothing. Cancelling ctx stops the
// client as Stop does.
func (c *Client) Start(ctx context.Context) error {
	if !c.cfg.works() {
		return nil
	}
	if err := c.river.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for running ones: they have
// Config.StopTimeout to finish, then their contexts are cancelled and they
// will be retried by a later client. It returns early with ctx's error if
// ctx ends first. Stopping a client that was not started does nothing.
func (c *Client) Stop(ctx context.Context) error {
	if err := c.river.Stop(ctx); err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}

// ScanArgs is the job that runs one scan.
type ScanArgs struct {
	ScanID string `json:"scan_id"`
}

// Kind is the job kind, "scan".
func (ScanArgs) Kind() string { return "scan" }

// InsertOpts makes a scan job unique per scan ID among jobs that are
// waiting, running or completed (a discarded or cancelled job may be
// inserted again).
func (ScanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// InsertScan inserts the job that runs the scan. inserted is false when
// the scan has a job already (waiting, running or completed), so a
// trigger delivered twice enqueues once.
//
// The server should insert the job whenever store.EnqueueScan returns a
// queued scan, created or not: if a process died between the two calls,
// the repeated trigger then repairs it (and ResumeQueued does at start).
func (c *Client) InsertScan(ctx context.Context, scanID string) (inserted bool, err error) {
	if scanID == "" {
		return false, errors.New("jobs: insert scan: empty scan ID")
	}
	res, err := c.river.Insert(ctx, ScanArgs{ScanID: scanID}, nil)
	if err != nil {
		return false, fmt.Errorf("jobs: insert scan %s: %w", scanID, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// ResumeQueued inserts a job for every queued scan of the store that has
// none, and returns how many it inserted. Run it at start to recover
// scans recorded just before a crash.
func (c *Client) ResumeQueued(ctx context.Context) (int, error) {
	n := 0
	f := ci.ScanFilter{Status: ci.ScanQueued, Limit: ci.MaxScanLimit}
	for {
		scans, next, err := c.db.ListScans(ctx, f)
		if err != nil {
			return n, fmt.Errorf("jobs: resume queued scans: %w", err)
		}
		for _, s := range scans {
			ok, err := c.InsertScan(ctx, s.ID)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		if next == "" {
			return n, nil
		}
		f.Cursor = next
	}
}

// Attempt returns, inside a runner, which attempt of its job this is
// (1-based) and how many attempts the job may take. It returns 0, 0
// outside a job.
func Attempt(ctx context.Context) (attempt, maxAttempts int) {
	a, _ := ctx.Value(attemptKey{}).([2]int)
	return a[0], a[1]
}

type attemptKey struct{}

// Permanent marks a runner's error as final: the job is not retried.
func Permanent(err error) error {
	return river.JobCancel(err)
}

type scanWorker struct {
	river.WorkerDefaults[ScanArgs]
	runner ScanRunner
	cfg    *Config
}

func (w *scanWorker) Work(ctx context.Context, job *river.Job[ScanArgs]) error {
	ctx = context.WithValue(ctx, attemptKey{}, [2]int{job.Attempt, job.MaxAttempts})
	return w.runner.RunScan(ctx, job.Args.ScanID)
}

func (w *scanWorker) NextRetry(job *river.Job[ScanArgs]) time.Time {
	return nextRetry(w.cfg, job.Attempt)
}

// nextRetry is the time of the next attempt, or the zero time for River's
// default policy.
func nextRetry(cfg *Config, attempt int) time.Time {
	if cfg.Backoff == nil {
		return time.Time{}
	}
	return time.Now().Add(cfg.Backoff(attempt))
}
