package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
)

// mails records the calls of a MailRunner.
type mails struct {
	mu    sync.Mutex
	calls []string // key, sealed value and whether it was the last attempt
	fail  func(key string, attempt int) error
}

func (m *mails) DeliverMail(ctx context.Context, key, sealed string, last bool) error {
	a, _ := Attempt(ctx)
	m.mu.Lock()
	call := key + "=" + sealed
	if last {
		call += " (last)"
	}
	m.calls = append(m.calls, call)
	m.mu.Unlock()
	return m.fail(key, a)
}

// TestMails: a mail job is unique per key, retried with the mail backoff
// until its last attempt (which the runner is told), and a Permanent
// error stops it.
func TestMails(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &mails{fail: func(key string, attempt int) error {
			switch {
			case key == "flaky" && attempt < 2:
				return errors.New("451 try later")
			case key == "down":
				return errors.New("connection refused")
			case key == "refused":
				return Permanent(errors.New("550 no such user"))
			}
			return nil
		}}
		c := newClient(t, db, Config{Mails: r, MailMaxAttempts: 3, MailBackoff: func(int) time.Duration { return 10 * time.Millisecond }})
		events := subscribe(t, c)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"ok", "ok", "flaky", "down", "refused"} {
			if err := c.QueueMail(ctx, k, "sealed-"+k); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.QueueMail(ctx, "", "x"); err == nil {
			t.Error("a mail without a key was queued")
		}
		states := waitKinds(t, events, MailArgs{}.Kind(), 4)
		want := map[rivertype.JobState]int{rivertype.JobStateCompleted: 2, rivertype.JobStateDiscarded: 1, rivertype.JobStateCancelled: 1}
		if diff := cmp.Diff(states, want); diff != "" {
			t.Errorf("final job states (-got +want):\n%s", diff)
		}
		count := map[string]int{}
		r.mu.Lock()
		for _, c := range r.calls {
			count[c]++
		}
		r.mu.Unlock()
		wantCalls := map[string]int{"ok=sealed-ok": 1, "flaky=sealed-flaky": 2, "down=sealed-down": 2, "down=sealed-down (last)": 1, "refused=sealed-refused": 1}
		if diff := cmp.Diff(count, wantCalls); diff != "" {
			t.Errorf("attempts (-got +want):\n%s", diff)
		}
	})
}

func TestMailBackoff(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for a := 1; a < DefaultMailMaxAttempts; a++ {
		d, want := MailBackoff(a), mailSchedule[a-1]
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("MailBackoff(%d) = %s, want %s ±20%%", a, d, want)
		}
		total += want
	}
	if total < 20*time.Hour || total > 28*time.Hour {
		t.Errorf("the default attempts span %s, want about a day", total)
	}
}

// enqueuedRunner records Enqueued(ctx) of each attempt of a periodic
// job, and fails the first.
type enqueuedRunner struct {
	mu   sync.Mutex
	seen []time.Time
}

func (r *enqueuedRunner) RunPeriodic(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, Enqueued(ctx))
	if len(r.seen) == 1 {
		return errors.New("first attempt fails")
	}
	return nil
}

// TestPeriodicEnqueued: every attempt of a periodic job is told the same
// enqueue time, the one of its first: what a run names its work after.
func TestPeriodicEnqueued(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db, _ := setup(t, dialect)
		r := &enqueuedRunner{}
		c := newClient(t, db, Config{Periodic: r, Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
		events := subscribe(t, c)
		sched, err := ParseSchedule("0 3 * * *")
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now().Add(-time.Second)
		if err := c.AddPeriodic(Periodic{Name: "report:app", Schedule: sched, RunOnStart: true}); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := waitKinds(t, events, PeriodicArgs{}.Kind(), 1); got[rivertype.JobStateCompleted] != 1 {
			t.Fatalf("final states %v", got)
		}
		after := time.Now().Add(time.Second)
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.seen) != 2 || !r.seen[0].Equal(r.seen[1]) || r.seen[0].Before(before) || r.seen[0].After(after) {
			t.Errorf("Enqueued per attempt %v, want twice the same time in [%s, %s]", r.seen, before, after)
		}
		if !Enqueued(ctx).IsZero() {
			t.Error("Enqueued outside a job is not zero")
		}
	})
}
