package gateclient

import (
	"math/rand/v2"
	"time"
)

// jitter spreads d by ±20%, so many pipelines waiting on one push do not
// ask in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) // #nosec G404 -- jitter spreads retries; nothing secret depends on it
}
