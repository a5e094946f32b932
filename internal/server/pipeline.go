package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/scanner/engines"
)

// newPipeline makes the pipeline service (package ci) on the server's
// store, blobs, queue and outbound policy.
func (s *Server) newPipeline(scanDelay time.Duration) (*ci.Service, error) {
	engs := s.cfg.Engines
	if engs == nil {
		engs = engines.Worker(nil)
	}
	forgeClient := s.cfg.ForgeHTTPClient
	if forgeClient == nil {
		forgeClient = s.outbound.Client(forgeStatusTimeout)
	}
	svc, err := ci.New(ci.Config{
		Store:       s.db,
		Blobs:       s.blobs,
		Queue:       queue{s.queue},
		Sealer:      s.seal,
		Cache:       store.NewScanCache(s.db, s.blobs),
		Engines:     engs,
		Git:         s.git,
		Registries:  ci.Registries{Insecure: s.cfg.InsecureRegistries, Transport: s.registryTransport},
		ForgeClient: forgeClient,
		PublicURL:   s.cfg.PublicURL,
		RescanDays:  s.cfg.RescanDays,
		ScanDelay:   scanDelay,
		Metrics:     s.metrics,
		Logger:      s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return svc, nil
}

// jobRunner runs the queue's scan, commit status and periodic jobs with
// the pipeline service, telling it the attempt and marking its final
// errors final for the queue.
type jobRunner struct{ s *Server }

func (j jobRunner) RunScan(ctx context.Context, scanID string) error {
	return runJob(ctx, func(ctx context.Context) error { return j.s.ci.RunScan(ctx, scanID) })
}

func (j jobRunner) PostCommitStatus(ctx context.Context, scanID string) error {
	return runJob(ctx, func(ctx context.Context) error { return j.s.ci.PostCommitStatus(ctx, scanID) })
}

func (j jobRunner) RunPeriodic(ctx context.Context, name string) error {
	return runJob(ctx, func(ctx context.Context) error { return j.s.runPeriodic(ctx, name) }) // reportschedules.go
}

func runJob(ctx context.Context, run func(context.Context) error) error {
	attempt, maxAttempts := jobs.Attempt(ctx)
	err := run(ci.WithAttempt(ctx, attempt, maxAttempts))
	if ci.IsPermanent(err) {
		return jobs.Permanent(err)
	}
	return err
}

// queue is the job queue as the pipeline service sees it (ci.Queue).
type queue struct{ *jobs.Client }

// AddPeriodic parses the cron schedule; one that does not parse is
// ci.ErrInvalid.
func (q queue) AddPeriodic(name, schedule string) error {
	sched, err := jobs.ParseSchedule(schedule)
	if err != nil {
		return fmt.Errorf("%w: %v", ci.ErrInvalid, err)
	}
	return q.Client.AddPeriodic(jobs.Periodic{Name: name, Schedule: sched})
}

// RemovePeriodic removes the periodic job, if there is one.
func (q queue) RemovePeriodic(name string) { q.Client.RemovePeriodic(name) }

// EngineSeconds observes an engine's part of a scan (ci.Metrics).
func (m *metrics) EngineSeconds(engine string, seconds float64) {
	m.engineSeconds.WithLabelValues(engine).Observe(seconds)
}

// Rescan counts a succeeded rescan (ci.Metrics).
func (m *metrics) Rescan(kind ci.ScanKind, outcome string) {
	m.rescans.WithLabelValues(string(kind), outcome).Inc()
}

// reclaim makes the scans a dead process left running run again now (see
// Config.ReclaimOnStart).
func (s *Server) reclaim(ctx context.Context) error {
	got, err := s.queue.Reclaim(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var ids []string
	for _, r := range got {
		if r.ScanID != "" {
			ids = append(ids, r.ScanID)
		}
	}
	n, err := s.db.RequeueRunning(ctx, ids...)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if len(got) > 0 {
		s.log.WarnContext(ctx, "reclaimed jobs a stopped process left running", slog.Int("jobs", len(got)), slog.Int("scans", n))
	}
	return nil
}
