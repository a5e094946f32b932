package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
)

// The mails of secure links (reports/notify): one job per message, in a
// queue of their own that only processes given a mail server work, retried
// with backoff for about a day. The job's arguments are the message's key
// (an HMAC of recipient and link) and the message sealed by the mailer:
// the link's token never sits in clear in the job table.

// MailRunner sends the queued mails (notify.Mailer.Deliver).
type MailRunner interface {
	// DeliverMail makes one attempt; an error asks for another, unless
	// it is Permanent. lastAttempt says no other attempt follows.
	DeliverMail(ctx context.Context, key, sealed string, lastAttempt bool) error
}

// Defaults of the mail settings of Config.
const (
	DefaultMailMaxAttempts = 8
	DefaultMailWorkers     = 4
	// MailQueue is the River queue of mail jobs: worked only by the
	// processes that have a mail server (Config.Mails).
	MailQueue = "report_mail"
	// mailTimeout bounds one attempt's job (the mailer bounds each SMTP
	// command itself).
	mailTimeout = 5 * time.Minute
)

// mailSchedule is the wait before attempt n+1 after attempt n failed: the
// eight attempts span about a day.
var mailSchedule = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 14 * time.Hour,
}

// MailBackoff is the default Config.MailBackoff: the schedule's wait after
// the attempt-th failure, ±20% at random.
func MailBackoff(attempt int) time.Duration {
	d := mailSchedule[min(max(attempt, 1), len(mailSchedule))-1]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) // #nosec G404 -- jitter, not a secret
}

// MailArgs is the job that sends one mail.
type MailArgs struct {
	// Key names the message (an HMAC of its recipient and link); a job
	// is unique per key.
	Key string `json:"key" river:"unique"`
	// Sealed is the message, sealed by the mailer to its key.
	Sealed string `json:"sealed"`
}

// Kind is the job kind, "report_link_mail".
func (MailArgs) Kind() string { return "report_link_mail" }

// InsertOpts puts mail jobs in their queue, unique per key among jobs
// waiting, running or completed: a link mailed twice is sent once.
func (MailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: MailQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// addMails registers the mail worker and its queue on a River config,
// for a client with a MailRunner.
func addMails(workers *river.Workers, rc *river.Config, c *Config) {
	if rc.Queues == nil {
		rc.Queues = map[string]river.QueueConfig{}
	}
	rc.Queues[MailQueue] = river.QueueConfig{MaxWorkers: c.MailWorkers}
	river.AddWorker(workers, &mailWorker{cfg: c})
}

// mailDefaults fills the mail settings of a config.
func (c *Config) mailDefaults() {
	if c.MailMaxAttempts == 0 {
		c.MailMaxAttempts = DefaultMailMaxAttempts
	}
	if c.MailBackoff == nil {
		c.MailBackoff = MailBackoff
	}
	if c.MailWorkers == 0 {
		c.MailWorkers = DefaultMailWorkers
	}
}

func (c Config) validateMails() error {
	switch {
	case c.MailMaxAttempts < 0:
		return fmt.Errorf("jobs: mail max attempts %d is negative", c.MailMaxAttempts)
	case c.MailWorkers < 0:
		return fmt.Errorf("jobs: mail workers %d is negative", c.MailWorkers)
	}
	return nil
}

// QueueMail inserts the job that sends a sealed mail (it implements
// notify.Queue). A key that has a job already (waiting, running or
// completed) keeps it.
func (c *Client) QueueMail(ctx context.Context, key, sealed string) error {
	if key == "" || sealed == "" {
		return errors.New("jobs: queue mail: empty key or message")
	}
	if _, err := c.river.Insert(ctx, MailArgs{Key: key, Sealed: sealed}, &river.InsertOpts{MaxAttempts: c.cfg.MailMaxAttempts}); err != nil {
		return fmt.Errorf("jobs: queue mail %s: %w", key, err)
	}
	return nil
}

type mailWorker struct {
	river.WorkerDefaults[MailArgs]
	cfg *Config
}

func (w *mailWorker) Work(ctx context.Context, job *river.Job[MailArgs]) error {
	ctx = context.WithValue(ctx, attemptKey{}, [2]int{job.Attempt, job.MaxAttempts})
	return w.cfg.Mails.DeliverMail(ctx, job.Args.Key, job.Args.Sealed, job.Attempt >= job.MaxAttempts)
}

func (w *mailWorker) NextRetry(job *river.Job[MailArgs]) time.Time {
	return time.Now().Add(w.cfg.MailBackoff(job.Attempt))
}

func (w *mailWorker) Timeout(*river.Job[MailArgs]) time.Duration { return mailTimeout }
