package ci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/format"
	"github.com/vigil-sec/vigil/scanner/image"
)

// ScanArtifacts is the manifest blob a succeeded scan's ResultKey names: the
// blob keys of its reports. SBOM documents are written at scan time, as
// only then does the engine's full document exist.
type ScanArtifacts struct {
	Result    string `json:"result"` // Vigil JSON, without a gate decision
	SARIF     string `json:"sarif,omitempty"`
	CycloneDX string `json:"cyclonedx,omitempty"`
	SPDX      string `json:"spdx,omitempty"`
	// RepoPolicy is the policy file of a scanned commit (nil for an
	// image, or a scan from before it was kept).
	RepoPolicy *repoPolicy `json:"repo_policy,omitempty"`
}

// RunScan runs one scan: it is the job queue's scan runner. A scan that
// succeeded already is left as it is (a duplicate or rescued job), so
// results are never written twice. Bad input (an unknown commit, an image
// no engine applies to) fails the scan at once; other errors are retried
// by the queue, and the last attempt's failure is recorded.
func (s *Service) RunScan(ctx context.Context, scanID string) error {
	sc, err := s.store.GetScan(ctx, scanID)
	if errors.Is(err, ErrNotFound) {
		return permanent(err)
	}
	if err != nil {
		return err
	}
	if sc.Status == ScanSucceeded {
		return nil
	}
	sc, err = s.store.MarkRunning(ctx, scanID)
	if errors.Is(err, ErrConflict) {
		return nil // it succeeded meanwhile
	}
	if err != nil {
		return err
	}
	log := s.log.With(slog.String("scan", scanID), slog.Int("attempt", sc.Attempts))
	rescanOf := sc.RescanOf
	if rescanOf != "" {
		log = log.With(slog.String("rescan_of", rescanOf))
	}
	log.InfoContext(ctx, "scan started", slog.String("kind", string(sc.Kind)))
	s.queueCommitStatus(ctx, log, sc, StatusStarted)
	if s.scanDelay > 0 {
		select {
		case <-time.After(s.scanDelay):
		case <-ctx.Done():
			return s.scanFailed(ctx, log, sc, ctx.Err())
		}
	}

	res, timings, repo, err := s.scan(ctx, sc)
	if err != nil {
		return s.scanFailed(ctx, log, sc, err)
	}
	logCacheUse(ctx, log, res)
	arts, err := s.writeArtifacts(ctx, res, repo)
	if err != nil {
		return s.scanFailed(ctx, log, sc, err)
	}
	versions := map[string]string{}
	for _, e := range res.Engines {
		versions[e.ID] = e.Version
		timings[e.ID] = time.Duration(e.Seconds * float64(time.Second))
		s.metrics.EngineSeconds(e.ID, e.Seconds)
	}
	if err := s.recordResult(ctx, sc, rescanOf, res, repo); err != nil { // gate summary, tracked findings
		return s.scanFailed(ctx, log, sc, err)
	}
	if _, err := s.store.MarkSucceeded(ctx, scanID, ScanResult{ResultKey: arts, EngineVersions: versions, Timings: timings}); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil
		}
		return err
	}
	log.InfoContext(ctx, "scan succeeded", slog.Int("findings", len(res.Findings)))
	s.queueCommitStatus(ctx, log, sc, StatusFinished)
	if rescanOf != "" {
		s.rescanFinished(ctx, log, sc.Kind, rescanOf, res)
	}
	return nil
}

// scan checks out or resolves the target and runs the engines. For a
// commit it also returns the policy file the commit carries.
func (s *Service) scan(ctx context.Context, sc Scan) (*scanner.Result, map[string]time.Duration, *repoPolicy, error) {
	timings := map[string]time.Duration{}
	cache := s.scanCache(s.log.With(slog.String("scan", sc.ID)))
	var (
		t    *scanner.Target
		repo *repoPolicy
	)
	switch sc.Kind {
	case KindCommit:
		p, err := s.store.GetProject(ctx, sc.ProjectID)
		if err != nil {
			return nil, nil, nil, err
		}
		start := time.Now()
		// A rescan of a commit whose outputs are all cached needs no
		// checkout (first scans skip the look: it costs a clone). The
		// commit's policy file is the first scan's: a commit's files
		// never change. A first scan from before that file was kept
		// gets a checkout, to read it.
		if sc.RescanOf != "" {
			if first := s.firstRepoPolicy(ctx, sc.RescanOf); first != nil {
				if res, ok := cachedCommitScan(ctx, s.git, cache, s.engines, p.RepoURL, sc.CommitSHA); ok {
					timings["checkout"] = time.Since(start)
					return res, timings, first, nil
				}
			}
		}
		ws, err := s.git.Checkout(ctx, p.RepoURL, sc.CommitSHA)
		if err != nil {
			return nil, nil, nil, err
		}
		defer ws.Close()
		timings["checkout"] = time.Since(start)
		t = ws.Target
		repo = readRepoPolicy(t.Path)
		if sc.RescanOf == "" { // a rescan keeps its first scan's branch
			if err := s.recordBranch(ctx, sc, p, t.Path); err != nil {
				return nil, nil, nil, err
			}
		}
	case KindImage:
		ref, err := digestRef(sc.ImageRef, sc.ImageDigest)
		if err != nil {
			return nil, nil, nil, err
		}
		start := time.Now()
		if t, err = image.Resolve(ctx, ref, s.ImageOptions(ref)); err != nil {
			return nil, nil, nil, err
		}
		timings["pull"] = time.Since(start)
	default:
		return nil, nil, nil, fmt.Errorf("%w: unknown scan kind %q", scanner.ErrUsage, sc.Kind)
	}
	engs, err := scanner.Select(s.engines, nil, t)
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := scanner.Scan(ctx, t, engs, scanner.Options{Cache: cache})
	if err != nil {
		return nil, nil, nil, err
	}
	RememberSelection(ctx, cache, t, s.engines, engs)
	return res, timings, repo, nil
}

// recordBranch records the branch the repository has the commit on (see
// commitBranch): the default branch only when its head reaches the
// commit. A repository that cannot say records no branch, which is never
// the default one.
func (s *Service) recordBranch(ctx context.Context, sc Scan, p Project, dir string) error {
	branch, err := commitBranch(ctx, dir, sc.CommitSHA, p.DefaultBranch)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.WarnContext(ctx, "the commit's branch could not be found; none recorded", slog.String("scan", sc.ID), slog.Any("error", err))
		branch = ""
	}
	return s.store.RecordScanBranch(ctx, sc.ID, branch)
}

// firstRepoPolicy is the policy file a succeeded first scan kept, nil if
// it kept none (or cannot be read).
func (s *Service) firstRepoPolicy(ctx context.Context, firstID string) *repoPolicy {
	first, err := s.store.GetScan(ctx, firstID)
	if err != nil || first.Status != ScanSucceeded {
		return nil
	}
	sum, err := s.gateSummary(ctx, first)
	if err != nil {
		return nil
	}
	return sum.Repo
}

// digestRef pins the reference a scan was enqueued with to its digest, so
// that a tag moved since is not what gets scanned.
func digestRef(ref, digest string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("%w: image reference %q: %v", scanner.ErrUsage, ref, err)
	}
	return r.Context().Digest(digest).String(), nil
}

// ImageOptions allows plain HTTP for the configured insecure registries,
// and dials registries through the outbound policy.
func (s *Service) ImageOptions(ref string) image.Options {
	opts := image.Options{Transport: s.registries.Transport}
	if r, err := name.ParseReference(ref); err == nil {
		host := r.Context().RegistryStr()
		for _, h := range s.registries.Insecure {
			if strings.EqualFold(h, host) {
				opts.Insecure = true
			}
		}
	}
	return opts
}

// writeArtifacts stores the reports and returns the key of their manifest.
func (s *Service) writeArtifacts(ctx context.Context, res *scanner.Result, repo *repoPolicy) (string, error) {
	put := func(f format.Format) (string, error) {
		var buf bytes.Buffer
		if err := format.Write(&buf, f, res, nil); err != nil {
			return "", fmt.Errorf("write %s: %w", f, err)
		}
		key, _, err := s.blobs.Put(ctx, &buf)
		return key, err
	}
	var (
		a   = ScanArtifacts{RepoPolicy: repo}
		err error
	)
	if a.Result, err = put(format.JSON); err != nil {
		return "", err
	}
	if a.SARIF, err = put(format.SARIF); err != nil {
		return "", err
	}
	if res.SBOM != nil {
		if a.CycloneDX, err = put(format.CycloneDXJSON); err != nil {
			return "", err
		}
		if a.SPDX, err = put(format.SPDXJSON); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	key, _, err := s.blobs.Put(ctx, bytes.NewReader(b))
	return key, err
}

// scanFailed records a failure when it is final (bad input, or the last
// attempt) and tells the queue whether to retry.
func (s *Service) scanFailed(ctx context.Context, log *slog.Logger, sc Scan, err error) error {
	if ctx.Err() != nil {
		// Shutting down or timed out: the queue runs the job again.
		log.WarnContext(ctx, "scan interrupted", slog.Any("error", err))
		return err
	}
	final := errors.Is(err, scanner.ErrUsage) || errors.Is(err, ErrNotFound)
	attempt, maxAttempts := Attempt(ctx)
	if !final && attempt < maxAttempts {
		log.WarnContext(ctx, "scan attempt failed; it will be retried", slog.Any("error", err))
		return err
	}
	log.ErrorContext(ctx, "scan failed", slog.Any("error", err))
	if _, merr := s.store.MarkFailed(context.WithoutCancel(ctx), sc.ID, failureReason(sc, err)); merr != nil && !errors.Is(merr, ErrConflict) {
		return errors.Join(err, merr)
	}
	s.queueCommitStatus(ctx, log, sc, StatusFinished)
	return permanent(err)
}

// failureReason says why a scan failed in words safe for API users: the
// messages of usage errors were written for them; others may hold paths
// and internals, which stay in the server log.
func failureReason(sc Scan, err error) string {
	var ee *scanner.EngineError
	switch {
	case errors.Is(err, scanner.ErrUsage):
		return scanner.UsageMessage(err)
	case errors.Is(err, ErrNotFound):
		return "the scan's project no longer exists"
	case errors.As(err, &ee):
		return fmt.Sprintf("the %s engine failed on this target; the server log has the details", ee.Engine)
	case sc.Kind == KindImage:
		return "the image could not be read from its registry; the server log has the details"
	case sc.Kind == KindCommit:
		return "the commit could not be checked out or scanned; the server log has the details"
	}
	return "the scan failed; the server log has the details"
}

// Artifacts reads a succeeded scan's manifest.
func (s *Service) Artifacts(ctx context.Context, sc Scan) (ScanArtifacts, error) {
	var a ScanArtifacts
	if sc.ResultKey == "" {
		return a, fmt.Errorf("scan %s has no result", sc.ID)
	}
	rc, err := s.blobs.Open(ctx, sc.ResultKey)
	if err != nil {
		return a, err
	}
	defer rc.Close()
	if err := json.NewDecoder(rc).Decode(&a); err != nil {
		return a, fmt.Errorf("scan %s: bad ScanArtifacts manifest: %w", sc.ID, err)
	}
	return a, nil
}

// Result reads a succeeded scan's result.
func (s *Service) Result(ctx context.Context, sc Scan) (*scanner.Result, error) {
	a, err := s.Artifacts(ctx, sc)
	if err != nil {
		return nil, err
	}
	return s.ResultOf(ctx, sc, a)
}

// ResultOf reads the result that a scan's ScanArtifacts manifest names.
func (s *Service) ResultOf(ctx context.Context, sc Scan, a ScanArtifacts) (*scanner.Result, error) {
	rc, err := s.blobs.Open(ctx, a.Result)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var res scanner.Result
	if err := json.NewDecoder(rc).Decode(&res); err != nil {
		return nil, fmt.Errorf("scan %s: bad stored result: %w", sc.ID, err)
	}
	return &res, nil
}
