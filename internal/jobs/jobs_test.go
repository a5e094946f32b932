package jobs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// setup returns a fresh database with the store's and River's tables, and
// its DSN for opening it again as another process would.
func setup(t *testing.T, dialect store.Dialect) (*store.DB, string) {
	t.Helper()
	dsn := storetest.DSN(t, dialect)
	db := storetest.OpenDSN(t, dsn)
	if err := Migrate(context.Background(), db, storetest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	return db, dsn
}

// newClient returns a client with test timings, stopped when the test ends.
func newClient(t *testing.T, db *store.DB, cfg Config) *Client {
	t.Helper()
	cfg.Logger = storetest.Logger(t)
	cfg.testOnly = true
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	}
	c, err := New(db, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

// waitJobs waits for n jobs to finish (completed, cancelled or discarded)
// and returns their final states.
func waitJobs(t *testing.T, events <-chan *river.Event, n int) []rivertype.JobState {
	t.Helper()
	var states []rivertype.JobState
	timeout := time.After(30 * time.Second)
	for len(states) < n {
		select {
		case e := <-events:
			if e.Job.State == rivertype.JobStateCompleted || e.Job.State == rivertype.JobStateCancelled ||
				e.Job.State == rivertype.JobStateDiscarded {
				states = append(states, e.Job.State)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for jobs: %d of %d finished", len(states), n)
		}
	}
	return states
}

func subscribe(t *testing.T, c *Client) <-chan *river.Event {
	events, cancel := c.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled, river.EventKindJobFailed)
	t.Cleanup(cancel)
	return events
}

// runner records the calls of RunScan and RunPeriodic.
type runner struct {
	mu       sync.Mutex
	calls    []string // scan IDs or periodic names, in call order
	attempts [][2]int
	// fail decides the result of a call; nil means success.
	fail func(ctx context.Context, id string, attempt int) error
}

func (r *runner) RunScan(ctx context.Context, id string) error {
	a, maxA := Attempt(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, id)
	r.attempts = append(r.attempts, [2]int{a, maxA})
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail(ctx, id, a)
	}
	return nil
}

func (r *runner) RunPeriodic(ctx context.Context, name string) error {
	return r.RunScan(ctx, name)
}

func (r *runner) snapshot() ([]string, [][2]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...), append([][2]int(nil), r.attempts...)
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		dsn := storetest.DSN(t, dialect)
		// Several processes start at once on an empty database.
		var wg sync.WaitGroup
		for i := range 3 {
			db := storetest.OpenDSN(t, dsn)
			wg.Go(func() {
				if err := Migrate(ctx, db, storetest.Logger(t)); err != nil {
					t.Errorf("Migrate in process %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		db := storetest.OpenDSN(t, dsn)
		if err := Migrate(ctx, db, nil); err != nil { // nothing left to do
			t.Fatal(err)
		}
		var n int
		if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM river_job").Scan(&n); err != nil {
			t.Fatalf("river_job after Migrate: %v", err)
		}
	})
}

func TestInsertScanRunsOnce(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &runner{}
		c := newClient(t, db, Config{Scans: r})
		events := subscribe(t, c)

		for i, want := range []bool{true, false} { // a trigger delivered twice
			got, err := c.InsertScan(ctx, "scan-1")
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("InsertScan #%d inserted = %v, want %v", i+1, got, want)
			}
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := waitJobs(t, events, 1); got[0] != rivertype.JobStateCompleted {
			t.Fatalf("job state %s, want completed", got[0])
		}
		// A completed scan job is not inserted again.
		if got, err := c.InsertScan(ctx, "scan-1"); err != nil || got {
			t.Errorf("InsertScan after completion = %v, %v; want false", got, err)
		}
		time.Sleep(500 * time.Millisecond) // room for a wrong second run
		calls, _ := r.snapshot()
		if diff := cmp.Diff([]string{"scan-1"}, calls); diff != "" {
			t.Errorf("RunScan calls mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &runner{fail: func(_ context.Context, _ string, attempt int) error {
			if attempt == 1 {
				return errors.New("registry unreachable")
			}
			return nil
		}}
		c := newClient(t, db, Config{Scans: r, MaxAttempts: 3})
		events := subscribe(t, c)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.InsertScan(ctx, "scan-1"); err != nil {
			t.Fatal(err)
		}
		if got := waitJobs(t, events, 1); got[0] != rivertype.JobStateCompleted {
			t.Fatalf("job state %s, want completed", got[0])
		}
		calls, attempts := r.snapshot()
		if diff := cmp.Diff([]string{"scan-1", "scan-1"}, calls); diff != "" {
			t.Errorf("RunScan calls mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][2]int{{1, 3}, {2, 3}}, attempts); diff != "" {
			t.Errorf("Attempt() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestPermanentError(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &runner{fail: func(context.Context, string, int) error {
			return Permanent(errors.New("no such commit"))
		}}
		c := newClient(t, db, Config{Scans: r})
		events := subscribe(t, c)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.InsertScan(ctx, "scan-1"); err != nil {
			t.Fatal(err)
		}
		if got := waitJobs(t, events, 1); got[0] != rivertype.JobStateCancelled {
			t.Fatalf("job state %s, want cancelled", got[0])
		}
		if calls, _ := r.snapshot(); len(calls) != 1 {
			t.Errorf("RunScan ran %d times, want once", len(calls))
		}
		// A cancelled scan job may be inserted again (a manual retry).
		if got, err := c.InsertScan(ctx, "scan-1"); err != nil || !got {
			t.Errorf("InsertScan after cancel = %v, %v; want true", got, err)
		}
	})
}

// TestSurvivesRestart inserts a job with no worker running, then works it
// in a new "process": a new connection and a new client.
func TestSurvivesRestart(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db1, dsn := setup(t, dialect)

		inserter := newClient(t, db1, Config{}) // no runner: insert only
		if err := inserter.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := inserter.InsertScan(ctx, "scan-1"); err != nil {
			t.Fatal(err)
		}
		if err := inserter.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db1.Close(); err != nil {
			t.Fatal(err)
		}

		db2 := storetest.OpenDSN(t, dsn)
		r := &runner{}
		c := newClient(t, db2, Config{Scans: r})
		events := subscribe(t, c)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := waitJobs(t, events, 1); got[0] != rivertype.JobStateCompleted {
			t.Fatalf("job state %s, want completed", got[0])
		}
		if calls, _ := r.snapshot(); !cmp.Equal(calls, []string{"scan-1"}) {
			t.Errorf("RunScan calls = %v, want [scan-1]", calls)
		}
	})
}

// TestStopGrace stops a client while a job runs past the grace period: the
// job's context is cancelled, Stop returns, and a later client runs the
// job again.
func TestStopGrace(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)

		started := make(chan struct{})
		blocking := &runner{fail: func(ctx context.Context, _ string, _ int) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}}
		c1 := newClient(t, db, Config{Scans: blocking, StopTimeout: 200 * time.Millisecond})
		if err := c1.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.InsertScan(ctx, "scan-1"); err != nil {
			t.Fatal(err)
		}
		<-started
		begin := time.Now()
		if err := c1.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d > 10*time.Second {
			t.Errorf("Stop took %s with a 200ms grace period", d)
		}

		r := &runner{}
		c2 := newClient(t, db, Config{Scans: r})
		events := subscribe(t, c2)
		if err := c2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := waitJobs(t, events, 1); got[0] != rivertype.JobStateCompleted {
			t.Fatalf("job state %s, want completed", got[0])
		}
		if calls, _ := r.snapshot(); len(calls) != 1 {
			t.Errorf("second client ran the job %d times, want once", len(calls))
		}
	})
}

func TestResumeQueued(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		p, err := db.CreateProject(ctx, ci.Project{Name: "api"})
		if err != nil {
			t.Fatal(err)
		}
		r := &runner{}
		c := newClient(t, db, Config{Scans: r})
		events := subscribe(t, c)

		var ids []string
		for i := range 3 {
			s, _, err := db.EnqueueScan(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: strings.Repeat(string(rune('a'+i)), 40)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, s.ID)
		}
		if _, err := c.InsertScan(ctx, ids[0]); err != nil { // this one has its job
			t.Fatal(err)
		}
		if _, err := db.MarkFailed(ctx, ids[2], "bad ref"); err != nil { // not queued
			t.Fatal(err)
		}
		n, err := c.ResumeQueued(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("ResumeQueued() = %d, want 1", n)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitJobs(t, events, 2)
		calls, _ := r.snapshot()
		if diff := cmp.Diff([]string{ids[0], ids[1]}, calls, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("RunScan calls mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestPeriodic(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &runner{}
		c := newClient(t, db, Config{Periodic: r})
		events := subscribe(t, c)

		sched, err := ParseSchedule("0 3 * * *")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddPeriodic(Periodic{Name: "rescan:api", Schedule: sched, RunOnStart: true}); err != nil {
			t.Fatal(err)
		}
		// Adding again replaces it.
		if err := c.AddPeriodic(Periodic{Name: "rescan:api", Schedule: sched, RunOnStart: true}); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := waitJobs(t, events, 1); got[0] != rivertype.JobStateCompleted {
			t.Fatalf("job state %s, want completed", got[0])
		}
		if calls, _ := r.snapshot(); !cmp.Equal(calls, []string{"rescan:api"}) {
			t.Errorf("RunPeriodic calls = %v, want [rescan:api]", calls)
		}
		if !c.RemovePeriodic("rescan:api") {
			t.Error("RemovePeriodic() = false, want true")
		}
		if err := c.AddPeriodic(Periodic{Name: "x"}); err == nil {
			t.Error("AddPeriodic without a schedule succeeded")
		}
	})
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	from := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for spec, want := range map[string]time.Time{
		"0 3 * * *":    time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC),
		"@hourly":      time.Date(2025, 1, 1, 13, 0, 0, 0, time.UTC),
		"@every 6h":    time.Date(2025, 1, 1, 18, 0, 0, 0, time.UTC),
		"*/15 * * * *": time.Date(2025, 1, 1, 12, 15, 0, 0, time.UTC),
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", spec, err)
			continue
		}
		if got := s.Next(from); !got.Equal(want) {
			t.Errorf("ParseSchedule(%q).Next(%s) = %s, want %s", spec, from, got, want)
		}
	}
	for _, spec := range []string{"", "61 * * * *", "* * * *", "@sometimes", "0 0 3 * * *"} {
		_, err := ParseSchedule(spec)
		var se *ScheduleError
		if !errors.As(err, &se) || se.Spec != spec {
			t.Errorf("ParseSchedule(%q) error = %v, want a *ScheduleError for the spec", spec, err)
			continue
		}
		if !strings.Contains(err.Error(), `"`+spec+`"`) {
			t.Errorf("ParseSchedule(%q) error %q does not name the spec", spec, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Workers: -1},
		{JobTimeout: time.Hour, RescueAfter: time.Minute},
		{StopTimeout: -time.Second},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", cfg)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}
