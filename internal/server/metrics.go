package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/store"
)

// metrics are the service's own Prometheus collectors, beside httpx's.
type metrics struct {
	engineSeconds *prometheus.HistogramVec
	decisions     *prometheus.CounterVec
	rescans       *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, db *store.DB) *metrics {
	m := &metrics{
		engineSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vigil",
			Subsystem: "scan",
			Name:      "engine_duration_seconds",
			Help:      "Wall time of each engine's part of a scan, by engine.",
			Buckets:   prometheus.ExponentialBuckets(0.25, 2, 14), // 0.25 s … ~34 min
		}, []string{"engine"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil",
			Subsystem: "gate",
			Name:      "decisions_total",
			Help:      "Gate decisions answered, by decision and by who asked (api, admission).",
		}, []string{"decision", "source"}),
		rescans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vigil",
			Subsystem: "scan",
			Name:      "rescans_total",
			Help:      "Scheduled rescans that succeeded, by kind (commit, image) and whether they found what the first scan had not (new_findings, unchanged).",
		}, []string{"kind", "outcome"}),
	}
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "vigil",
		Subsystem: "scan",
		Name:      "queued",
		Help:      "Scans waiting for a worker.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := db.CountScans(ctx, ci.ScanQueued)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	reg.MustRegister(m.engineSeconds, m.decisions, m.rescans, queued)
	return m
}
