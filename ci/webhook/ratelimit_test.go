package webhook

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestLimiterRefusesNewcomersWhenFull: when maxSources addresses are
// remembered, a new address is refused rather than another address's
// bucket reset.
func TestLimiterRefusesNewcomersWhenFull(t *testing.T) {
	t.Parallel()
	l := limiter(rate.Every(time.Hour), 1) // a bucket refills in an hour: every address stays remembered
	for i := range maxSources {
		if ok, _ := l.Allow(strconv.Itoa(i)); !ok {
			t.Fatalf("address %d refused with room left", i)
		}
	}
	if ok, wait := l.Allow("newcomer"); ok || wait <= 0 {
		t.Errorf("a newcomer with every slot in use: allowed %v, retry after %v; want refused", ok, wait)
	}
	if ok, _ := l.Allow("0"); ok {
		t.Error("address 0 got a fresh bucket: a newcomer reset it")
	}
}
