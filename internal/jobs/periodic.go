package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/robfig/cron/v3"
)

// Schedule says when a periodic job runs next. A cron.Schedule fits, as
// does a fixed interval (river.PeriodicInterval).
type Schedule interface {
	Next(time.Time) time.Time
}

// ScheduleError reports a schedule that does not parse.
type ScheduleError struct {
	Spec string
	Err  error
}

func (e *ScheduleError) Error() string {
	return fmt.Sprintf("invalid schedule %q: %v (want cron syntax: five fields "+
		"minute hour day-of-month month day-of-week, like \"0 3 * * *\", or @hourly, @daily, @weekly, @every 6h)",
		e.Spec, e.Err)
}

func (e *ScheduleError) Unwrap() error { return e.Err }

// ParseSchedule parses a standard cron spec (robfig/cron/v3 syntax: five
// fields, the @ descriptors, @every DURATION, an optional CRON_TZ=). It
// returns a *ScheduleError naming the spec if it does not parse.
func ParseSchedule(spec string) (Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, &ScheduleError{Spec: spec, Err: err}
	}
	return s, nil
}

// Periodic is a job enqueued on a schedule.
type Periodic struct {
	// Name identifies the job among the client's periodic jobs, and is
	// what PeriodicRunner.RunPeriodic receives, for example
	// "rescan:<project ID>".
	Name     string
	Schedule Schedule
	// RunOnStart enqueues the job once when it is added (or when this
	// client becomes leader), then follows the schedule.
	RunOnStart bool
}

// PeriodicArgs is the job that runs a periodic job.
type PeriodicArgs struct {
	Name string `json:"name"`
}

// Kind is the job kind, "periodic".
func (PeriodicArgs) Kind() string { return "periodic" }

// InsertOpts makes a periodic job unique per name while one is waiting or
// running, so a slow run does not pile up the next ones.
func (PeriodicArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{
		ByArgs: true,
		ByState: []rivertype.JobState{
			rivertype.JobStateAvailable,
			rivertype.JobStatePending,
			rivertype.JobStateRetryable,
			rivertype.JobStateRunning,
			rivertype.JobStateScheduled,
		},
	}}
}

// AddPeriodic schedules p, replacing a periodic job of the same name.
// Only the elected leader among the clients on a database enqueues
// periodic jobs, so every process that may lead should add the same ones;
// any client with a PeriodicRunner works them.
func (c *Client) AddPeriodic(p Periodic) error {
	if p.Name == "" {
		return errors.New("jobs: periodic job without a name")
	}
	if p.Schedule == nil {
		return fmt.Errorf("jobs: periodic job %q without a schedule", p.Name)
	}
	name := p.Name
	c.river.PeriodicJobs().RemoveByID(name)
	_, err := c.river.PeriodicJobs().AddSafely(river.NewPeriodicJob(
		p.Schedule,
		func() (river.JobArgs, *river.InsertOpts) { return PeriodicArgs{Name: name}, nil },
		&river.PeriodicJobOpts{ID: name, RunOnStart: p.RunOnStart},
	))
	if err != nil {
		return fmt.Errorf("jobs: add periodic job %q: %w", name, err)
	}
	return nil
}

// RemovePeriodic unschedules the periodic job with the name, and reports
// whether there was one. A job already enqueued still runs.
func (c *Client) RemovePeriodic(name string) bool {
	return c.river.PeriodicJobs().RemoveByID(name)
}

type periodicWorker struct {
	river.WorkerDefaults[PeriodicArgs]
	runner PeriodicRunner
	cfg    *Config
}

func (w *periodicWorker) Work(ctx context.Context, job *river.Job[PeriodicArgs]) error {
	ctx = context.WithValue(ctx, attemptKey{}, [2]int{job.Attempt, job.MaxAttempts})
	ctx = context.WithValue(ctx, enqueuedKey{}, job.CreatedAt)
	return w.runner.RunPeriodic(ctx, job.Args.Name)
}

// Enqueued returns, inside a PeriodicRunner, when the job it runs was
// enqueued: the schedule's tick it stands for (the leader enqueues a
// periodic job at its tick, give or take River's 100ms margin and the
// leader's delays), the same for every attempt of the job, so a run can
// name what it makes after its tick and a retry finds it made. It
// returns the zero time outside a periodic job.
func Enqueued(ctx context.Context) time.Time {
	t, _ := ctx.Value(enqueuedKey{}).(time.Time)
	return t
}

type enqueuedKey struct{}

func (w *periodicWorker) NextRetry(job *river.Job[PeriodicArgs]) time.Time {
	return nextRetry(w.cfg, job.Attempt)
}
