package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// StatusRunner reports a scan's state back to its forge as a commit
// status; the server supplies it. It reads the scan's current state
// rather than one fixed when the job was inserted, so a late or repeated
// job never sets an older state. Wrap an error with Permanent to stop the
// retries (the forge refused the status for good).
type StatusRunner interface {
	PostCommitStatus(ctx context.Context, scanID string) error
}

// Status events: what made the server report the scan.
const (
	StatusStarted  = "started"
	StatusFinished = "finished"
)

// StatusArgs is the job that posts one scan's commit status.
type StatusArgs struct {
	ScanID string `json:"scan_id"`
	Event  string `json:"event"` // StatusStarted or StatusFinished
}

// Kind is the job kind, "commit_status".
func (StatusArgs) Kind() string { return "commit_status" }

// statusMaxAttempts bounds a status job's retries: with River's backoff
// (attempt⁴ seconds) the last one runs about an hour and a half after the
// first, which covers a forge's outage without piling up.
const statusMaxAttempts = 8

// statusTimeout bounds one attempt of a status job.
const statusTimeout = time.Minute

// InsertOpts makes a status job unique per scan and event, so that a scan
// attempt retried after a crash reports its start once.
func (StatusArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: statusMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// InsertStatus inserts the job that posts the scan's commit status after
// the event. inserted is false when that job exists already.
func (c *Client) InsertStatus(ctx context.Context, scanID, event string) (inserted bool, err error) {
	switch {
	case scanID == "":
		return false, errors.New("jobs: insert commit status: empty scan ID")
	case event != StatusStarted && event != StatusFinished:
		return false, fmt.Errorf("jobs: insert commit status of scan %s: event %q is not %q or %q", scanID, event, StatusStarted, StatusFinished)
	}
	res, err := c.river.Insert(ctx, StatusArgs{ScanID: scanID, Event: event}, nil)
	if err != nil {
		return false, fmt.Errorf("jobs: insert commit status of scan %s: %w", scanID, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

type statusWorker struct {
	river.WorkerDefaults[StatusArgs]
	runner StatusRunner
	cfg    *Config
}

func (w *statusWorker) Work(ctx context.Context, job *river.Job[StatusArgs]) error {
	ctx = context.WithValue(ctx, attemptKey{}, [2]int{job.Attempt, job.MaxAttempts})
	return w.runner.PostCommitStatus(ctx, job.Args.ScanID)
}

func (w *statusWorker) NextRetry(job *river.Job[StatusArgs]) time.Time {
	return nextRetry(w.cfg, job.Attempt)
}

func (w *statusWorker) Timeout(*river.Job[StatusArgs]) time.Duration { return statusTimeout }
