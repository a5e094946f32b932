package bundle

import (
	"math"
	"testing"
)

// A size or offset a ZIP declares past MaxInt64 is refused, never turned
// negative (gosec G115).
func TestToInt64(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   uint64
		want int64
		ok   bool
	}{
		{0, 0, true},
		{math.MaxInt64, math.MaxInt64, true},
		{math.MaxInt64 + 1, 0, false},
		{math.MaxUint64, 0, false},
	} {
		if got, ok := toInt64(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("toInt64(%d) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
