package ci

import (
	"context"
	"errors"
	"log/slog"
)

// Which scan stands for a commit, an image digest or a project's default
// branch: what a release of a product is made of (package reports). A
// first scan is the scan of its target that pushes, the API and the gates
// know; rescans of it run today's rules on the same target, so the newest
// succeeded one of them all says the most.

// TargetScan is the scan that stands for the commit or the image digest n
// names (n.ImageRef is not looked at): its newest succeeded scan, first
// scan or rescan, or else its first scan as it is (queued, running or
// failed). ErrNotFound when it was never scanned.
func (s *Service) TargetScan(ctx context.Context, n NewScan) (Scan, error) {
	sc, err := s.store.SucceededScan(ctx, n)
	if !errors.Is(err, ErrNotFound) {
		return sc, err
	}
	if n.Kind == KindImage {
		return s.store.FindImageScan(ctx, n.ImageDigest)
	}
	return s.store.FindCommitScan(ctx, n.ProjectID, n.CommitSHA)
}

// DefaultBranchScan is the newest succeeded scan, first scan or rescan,
// recorded for the project's default branch (the branch its worker found
// the commit on), or ErrNotFound.
func (s *Service) DefaultBranchScan(ctx context.Context, p Project) (Scan, error) {
	return s.store.LatestBranchScan(ctx, p.ID, p.DefaultBranch, "")
}

// Retry queues a new scan of the target of a failed scan: a rescan of its
// first scan, or the rescan of it already queued or running. A succeeded
// or unfinished scan is returned as it is.
func (s *Service) Retry(ctx context.Context, sc Scan) (Scan, error) {
	if sc.Status != ScanFailed {
		return sc, nil
	}
	re, created, err := s.enqueueRescan(ctx, sc)
	if err != nil {
		return Scan{}, err
	}
	if created {
		s.log.InfoContext(ctx, "failed scan retried", slog.String("scan", re.ID), slog.String("failed", sc.ID))
	}
	return re, nil
}

// DefaultBranchHead asks the project's repository which commit its
// default branch points at (git ls-remote, confined to the Service's git
// policy). The error may hold what the remote said: log it, do not show
// it to API users.
func (s *Service) DefaultBranchHead(ctx context.Context, p Project) (string, error) {
	return headCommit(ctx, s.git, p.RepoURL, p.DefaultBranch)
}
