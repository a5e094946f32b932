package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// Scheduled rescans. A project with a schedule gets a River periodic job
// named rescanPrefix+<project ID>. Each run rescans the default branch's
// head commit and every image digest first scanned for the project in the
// last Config.RescanDays days, so new rules and data catch old code.
//
// A rescan is a scan of its own (store.EnqueueRescan): it never replaces
// the first scan of its commit or digest, and the deploy gate of a commit
// or image keeps reading that first scan, so a rescan never changes a
// gate decision by itself. What it does: it logs and counts
// (vigil_scan_rescans_total) whether it found what the first scan had
// not, and, being the newest succeeded scan of the default branch, it
// becomes the baseline of change gates, so that what new rules find in
// old code is not blamed on unrelated changes.

const rescanPrefix = "rescan:"

// scheduleRescans adds the periodic job of every project with a schedule.
func (s *Server) scheduleRescans(ctx context.Context) error {
	ps, err := s.db.ListProjects(ctx)
	if err != nil {
		return fmt.Errorf("server: schedule rescans: %w", err)
	}
	for _, p := range ps {
		if err := s.scheduleRescan(p); err != nil {
			return err
		}
	}
	return nil
}

// scheduleRescan adds (or replaces) the project's periodic rescan; a
// project without a schedule has none.
func (s *Server) scheduleRescan(p ci.Project) error {
	name := rescanPrefix + p.ID
	if p.Schedule == "" {
		s.queue.RemovePeriodic(name)
		return nil
	}
	sched, err := jobs.ParseSchedule(p.Schedule)
	if err != nil {
		// Validated when stored; a bad one must not stop the server.
		s.log.Error("project schedule does not parse; no rescans", slog.String("project", p.Name), slog.Any("error", err))
		return nil
	}
	if err := s.queue.AddPeriodic(jobs.Periodic{Name: name, Schedule: sched}); err != nil {
		return fmt.Errorf("server: schedule rescans of %s: %w", p.Name, err)
	}
	return nil
}

// RunPeriodic runs a periodic job: it is the job queue's periodic runner.
func (s *Server) RunPeriodic(ctx context.Context, name string) error {
	id, ok := strings.CutPrefix(name, rescanPrefix)
	if !ok {
		return jobs.Permanent(fmt.Errorf("unknown periodic job %q", name))
	}
	p, err := s.db.GetProject(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.queue.RemovePeriodic(name)
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	return s.rescanProject(ctx, p)
}

// rescanProject queues the rescans of a project: its default branch head
// (a first scan if that commit was never scanned) and its recent images.
func (s *Server) rescanProject(ctx context.Context, p ci.Project) error {
	log := s.log.With(slog.String("project", p.Name))
	var errs []error
	commit, err := headCommit(ctx, s.gitPolicy(), p.RepoURL, p.DefaultBranch)
	if err != nil {
		log.WarnContext(ctx, "rescan: default branch head not found", slog.String("branch", p.DefaultBranch), slog.Any("error", err))
		errs = append(errs, err)
	} else {
		first, err := s.db.FindCommitScan(ctx, p.ID, commit)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, _, err = s.enqueue(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: p.ID, CommitSHA: commit})
			errs = append(errs, err)
		case err != nil:
			errs = append(errs, err)
		default:
			errs = append(errs, s.rescan(ctx, log, first))
		}
	}
	imgs, err := s.db.RecentImageScans(ctx, p.ID, time.Now().AddDate(0, 0, -s.cfg.RescanDays))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, sc := range imgs {
		errs = append(errs, s.rescan(ctx, log, sc))
	}
	return errors.Join(errs...)
}

// rescan queues a rescan of a finished first scan; an unfinished one is
// left alone (it will scan with today's rules anyway).
func (s *Server) rescan(ctx context.Context, log *slog.Logger, first ci.Scan) error {
	if first.Status == ci.ScanQueued || first.Status == ci.ScanRunning {
		return nil
	}
	sc, created, err := s.db.EnqueueRescan(ctx, first)
	if err != nil {
		return err
	}
	if sc.Status == ci.ScanQueued {
		if _, err := s.queue.InsertScan(ctx, sc.ID); err != nil {
			return err
		}
	}
	if created {
		log.InfoContext(ctx, "rescan queued", slog.String("scan", sc.ID), slog.String("rescan_of", first.ID))
	}
	return nil
}

// rescanFinished says, in the log and the metrics, whether a succeeded
// rescan found what its first scan had not.
func (s *Server) rescanFinished(ctx context.Context, log *slog.Logger, kind ci.ScanKind, firstID string, res *scanner.Result) {
	first, err := s.db.GetScan(ctx, firstID)
	var old *scanner.Result
	if err == nil && first.Status == ci.ScanSucceeded {
		old, err = s.loadResult(ctx, first)
	}
	if err != nil || old == nil {
		log.InfoContext(ctx, "rescan finished; the first scan has no result to compare with", slog.Int("findings", len(res.Findings)))
		s.metrics.rescans.WithLabelValues(string(kind), "new_findings").Inc()
		return
	}
	seen := map[string]bool{}
	for _, f := range old.Findings {
		seen[f.Fingerprint] = true
	}
	var fresh []string
	for _, f := range res.Findings {
		if !seen[f.Fingerprint] {
			fresh = append(fresh, f.RuleID+" "+f.File)
		}
	}
	if len(fresh) == 0 {
		s.metrics.rescans.WithLabelValues(string(kind), "unchanged").Inc()
		log.InfoContext(ctx, "rescan finished: nothing new", slog.Int("findings", len(res.Findings)))
		return
	}
	s.metrics.rescans.WithLabelValues(string(kind), "new_findings").Inc()
	log.WarnContext(ctx, "rescan found what the first scan had not", slog.Int("new_findings", len(fresh)), slog.Any("new", fresh))
}

// headCommit asks the repository for the commit its branch points at,
// with git confined to the policy p.
func headCommit(ctx context.Context, p *source.Policy, repoURL, branch string) (string, error) {
	if err := source.CheckRev(branch); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := p.Git(ctx, "", repoURL, "ls-remote", "--", repoURL, "refs/heads/"+branch)
	if err != nil {
		return "", fmt.Errorf("git ls-remote %s: %w", branch, err)
	}
	for line := range strings.Lines(out) {
		sha, ref, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && ref == "refs/heads/"+branch {
			return sha, nil
		}
	}
	return "", fmt.Errorf("branch %s not found", branch)
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
