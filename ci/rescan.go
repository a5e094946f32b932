package ci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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

// RescanJob names the periodic job of a project's scheduled rescans.
func RescanJob(projectID string) string { return rescanPrefix + projectID }

// ScheduleRescans adds the periodic job of every project with a schedule.
func (s *Service) ScheduleRescans(ctx context.Context) error {
	ps, err := s.store.ListProjects(ctx)
	if err != nil {
		return fmt.Errorf("ci: schedule rescans: %w", err)
	}
	for _, p := range ps {
		if err := s.ScheduleRescan(p); err != nil {
			return err
		}
	}
	return nil
}

// ScheduleRescan adds (or replaces) the project's periodic rescan; a
// project without a schedule has none.
func (s *Service) ScheduleRescan(p Project) error {
	name := RescanJob(p.ID)
	if p.Schedule == "" {
		s.queue.RemovePeriodic(name)
		return nil
	}
	err := s.queue.AddPeriodic(name, p.Schedule)
	if errors.Is(err, ErrInvalid) {
		// Validated when stored; a bad one must not stop the server.
		s.log.Error("project schedule does not parse; no rescans", slog.String("project", p.Name), slog.Any("error", err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("ci: schedule rescans of %s: %w", p.Name, err)
	}
	return nil
}

// RunPeriodic runs a periodic job: it is the job queue's periodic runner.
func (s *Service) RunPeriodic(ctx context.Context, name string) error {
	id, ok := strings.CutPrefix(name, rescanPrefix)
	if !ok {
		return permanent(fmt.Errorf("unknown periodic job %q", name))
	}
	p, err := s.store.GetProject(ctx, id)
	if errors.Is(err, ErrNotFound) {
		s.queue.RemovePeriodic(name)
		return permanent(err)
	}
	if err != nil {
		return err
	}
	return s.rescanProject(ctx, p)
}

// rescanProject queues the rescans of a project: its default branch head
// (a first scan if that commit was never scanned) and its recent images.
func (s *Service) rescanProject(ctx context.Context, p Project) error {
	log := s.log.With(slog.String("project", p.Name))
	var errs []error
	commit, err := headCommit(ctx, s.git, p.RepoURL, p.DefaultBranch)
	if err != nil {
		log.WarnContext(ctx, "rescan: default branch head not found", slog.String("branch", p.DefaultBranch), slog.Any("error", err))
		errs = append(errs, err)
	} else {
		first, err := s.store.FindCommitScan(ctx, p.ID, commit)
		switch {
		case errors.Is(err, ErrNotFound):
			_, _, err = s.Enqueue(ctx, NewScan{Kind: KindCommit, ProjectID: p.ID, CommitSHA: commit})
			errs = append(errs, err)
		case err != nil:
			errs = append(errs, err)
		default:
			errs = append(errs, s.rescan(ctx, log, first))
		}
	}
	imgs, err := s.store.RecentImageScans(ctx, p.ID, time.Now().AddDate(0, 0, -s.rescanDays))
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
func (s *Service) rescan(ctx context.Context, log *slog.Logger, first Scan) error {
	if first.Status == ScanQueued || first.Status == ScanRunning {
		return nil
	}
	sc, created, err := s.enqueueRescan(ctx, first)
	if err != nil {
		return err
	}
	if created {
		log.InfoContext(ctx, "rescan queued", slog.String("scan", sc.ID), slog.String("rescan_of", first.ID))
	}
	return nil
}

// enqueueRescan records a rescan of the first scan of sc, or finds the
// one queued or running (store EnqueueRescan), and makes sure a queued
// one has a job.
func (s *Service) enqueueRescan(ctx context.Context, sc Scan) (re Scan, created bool, err error) {
	if re, created, err = s.store.EnqueueRescan(ctx, sc); err != nil {
		return Scan{}, false, err
	}
	if re.Status == ScanQueued {
		if _, err := s.queue.InsertScan(ctx, re.ID); err != nil {
			return Scan{}, false, err
		}
	}
	return re, created, nil
}

// rescanFinished says, in the log and the metrics, whether a succeeded
// rescan found what its first scan had not.
func (s *Service) rescanFinished(ctx context.Context, log *slog.Logger, kind ScanKind, firstID string, res *scanner.Result) {
	first, err := s.store.GetScan(ctx, firstID)
	var old *scanner.Result
	if err == nil && first.Status == ScanSucceeded {
		old, err = s.Result(ctx, first)
	}
	if err != nil || old == nil {
		log.InfoContext(ctx, "rescan finished; the first scan has no result to compare with", slog.Int("findings", len(res.Findings)))
		s.metrics.Rescan(kind, "new_findings")
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
		s.metrics.Rescan(kind, "unchanged")
		log.InfoContext(ctx, "rescan finished: nothing new", slog.Int("findings", len(res.Findings)))
		return
	}
	s.metrics.Rescan(kind, "new_findings")
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
