package jobs

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// statusRunner records PostCommitStatus calls through a runner.
type statusRunner struct{ *runner }

func (s statusRunner) PostCommitStatus(ctx context.Context, scanID string) error {
	return s.RunScan(ctx, scanID)
}

func TestStatusJobs(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &runner{fail: func(_ context.Context, id string, attempt int) error {
			switch {
			case id == "refused":
				return Permanent(errors.New("forge answered 422"))
			case attempt == 1:
				return errors.New("forge answered 502")
			}
			return nil
		}}
		c := newClient(t, db, Config{Statuses: statusRunner{r}})
		events := subscribe(t, c)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}

		// One job per scan and event: a second insert is a no-op.
		for _, ev := range []string{StatusStarted, StatusFinished} {
			if ok, err := c.InsertStatus(ctx, "scan-1", ev); err != nil || !ok {
				t.Fatalf("InsertStatus(scan-1, %s) = %v, %v; want inserted", ev, ok, err)
			}
		}
		if ok, err := c.InsertStatus(ctx, "scan-1", StatusStarted); err != nil || ok {
			t.Errorf("second InsertStatus(scan-1, started) = %v, %v; want a no-op", ok, err)
		}
		if _, err := c.InsertStatus(ctx, "refused", StatusFinished); err != nil {
			t.Fatal(err)
		}
		got := waitJobs(t, events, 3)
		counts := map[rivertype.JobState]int{}
		for _, s := range got {
			counts[s]++
		}
		if diff := cmp.Diff(map[rivertype.JobState]int{rivertype.JobStateCompleted: 2, rivertype.JobStateCancelled: 1}, counts); diff != "" {
			t.Errorf("final job states (-want +got):\n%s", diff)
		}
		calls, attempts := r.snapshot()
		n := map[string]int{}
		for i, id := range calls {
			n[id]++
			if attempts[i][1] != statusMaxAttempts {
				t.Errorf("call %d: max attempts %d, want %d", i, attempts[i][1], statusMaxAttempts)
			}
		}
		// scan-1: two jobs, each failed once then succeeded; refused: once.
		if diff := cmp.Diff(map[string]int{"scan-1": 4, "refused": 1}, n); diff != "" {
			t.Errorf("PostCommitStatus calls (-want +got):\n%s", diff)
		}

		for _, bad := range [][2]string{{"", StatusStarted}, {"scan-1", "queued"}} {
			if _, err := c.InsertStatus(ctx, bad[0], bad[1]); err == nil {
				t.Errorf("InsertStatus(%q, %q): no error", bad[0], bad[1])
			}
		}
	})
}
