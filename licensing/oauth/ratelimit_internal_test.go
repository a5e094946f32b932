package oauth

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestKeyedLimiterEvicts(t *testing.T) {
	t.Parallel()
	l := newKeyedLimiter(rate.Every(time.Second), 2)
	now := time.Now()
	for i := range 100 {
		if ok, _ := l.allow(fmt.Sprint("10.0.0.", i), now); !ok {
			t.Fatal("first request of an address refused")
		}
	}
	// After the refill time, idle buckets are dropped on the next call.
	l.allow("10.0.1.1", now.Add(l.idle+time.Second))
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
}
