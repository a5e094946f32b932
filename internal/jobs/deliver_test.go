package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// deliveries records the calls of a DeliveryRunner.
type deliveries struct {
	mu     sync.Mutex
	calls  []string // delivery ID and whether it was the last attempt
	sweeps int
	// fail decides an attempt's result; nil means success.
	fail func(id string, attempt int) error
}

func (d *deliveries) DeliverWebhook(ctx context.Context, id string, last bool) error {
	a, _ := Attempt(ctx)
	d.mu.Lock()
	call := id
	if last {
		call += " (last)"
	}
	d.calls = append(d.calls, call)
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		return fail(id, a)
	}
	return nil
}

func (d *deliveries) SweepWebhooks(context.Context) error {
	d.mu.Lock()
	d.sweeps++
	d.mu.Unlock()
	return nil
}

func (d *deliveries) snapshot() ([]string, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...), d.sweeps
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &deliveries{fail: func(id string, attempt int) error {
			if id == "flaky" && attempt < 3 {
				return errors.New("endpoint down")
			}
			if id == "dead" {
				return errors.New("endpoint down for good")
			}
			return nil
		}}
		var waits []int
		var mu sync.Mutex
		c := newClient(t, db, Config{Deliveries: r, DeliveryMaxAttempts: 3, DeliveryBackoff: func(attempt int) time.Duration {
			mu.Lock()
			waits = append(waits, attempt)
			mu.Unlock()
			return 10 * time.Millisecond
		}})
		events := subscribe(t, c)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Queued twice (after the commit, then by a sweep): delivered once.
		if err := c.QueueDeliveries(ctx, []string{"ok", "flaky", "dead"}); err != nil {
			t.Fatal(err)
		}
		if err := c.QueueDeliveries(ctx, []string{"ok"}); err != nil {
			t.Fatal(err)
		}
		states := waitKinds(t, events, DeliveryArgs{}.Kind(), 3)
		if diff := cmp.Diff(states, map[rivertype.JobState]int{rivertype.JobStateCompleted: 2, rivertype.JobStateDiscarded: 1}); diff != "" {
			t.Errorf("final job states (-got +want):\n%s", diff)
		}
		calls, sweeps := r.snapshot()
		count := map[string]int{}
		for _, c := range calls {
			count[c]++
		}
		want := map[string]int{"ok": 1, "flaky": 2, "flaky (last)": 1, "dead": 2, "dead (last)": 1}
		if diff := cmp.Diff(count, want); diff != "" {
			t.Errorf("attempts (-got +want):\n%s", diff)
		}
		mu.Lock()
		if len(waits) != 4 { // two retries each of flaky and dead
			t.Errorf("backoff asked %d times (%v), want 4", len(waits), waits)
		}
		mu.Unlock()
		if sweeps < 1 {
			t.Error("the sweep did not run on start")
		}
	})
}

// waitKinds waits for n jobs of the kind to end and counts their final
// states.
func waitKinds(t *testing.T, events <-chan *river.Event, kind string, n int) map[rivertype.JobState]int {
	t.Helper()
	got := map[rivertype.JobState]int{}
	timeout := time.After(30 * time.Second)
	for done := 0; done < n; {
		select {
		case e := <-events:
			if e.Job.Kind != kind {
				continue
			}
			switch e.Job.State {
			case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
				got[e.Job.State]++
				done++
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s jobs: %v", kind, got)
		}
	}
	return got
}

func TestDeliveryBackoff(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for a := 1; a < DefaultDeliveryMaxAttempts; a++ {
		d := DeliveryBackoff(a)
		want := deliverySchedule[a-1]
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("DeliveryBackoff(%d) = %s, want %s ±20%%", a, d, want)
		}
		total += want
	}
	if total < 72*time.Hour || total > 80*time.Hour {
		t.Errorf("the default attempts span %s, want about three days", total)
	}
	if d := DeliveryBackoff(50); d < 19*time.Hour {
		t.Errorf("DeliveryBackoff(50) = %s, want the last step", d)
	}
}
