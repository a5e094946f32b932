package webhook

import (
	"testing"
	"time"
)

func TestKeyedLimiterEvicts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	k := newKeyedLimiter(1, 1)
	k.now = func() time.Time { return now }

	if !k.allow("a") || k.allow("a") {
		t.Fatal("a: want one request allowed, then refused")
	}
	if !k.allow("b") {
		t.Fatal("b: refused, want its own bucket")
	}
	now = now.Add(limiterIdle + time.Second)
	if !k.allow("c") {
		t.Fatal("c: refused")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.entries["a"]; ok || len(k.entries) != 1 {
		t.Errorf("entries after idle sweep: %d (a kept: %v), want only c", len(k.entries), ok)
	}
}
