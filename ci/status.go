package ci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vigil-sec/vigil/ci/forge"
)

// ForgeTokenAAD binds a sealed forge token to its project.
func ForgeTokenAAD(projectID string) string { return "forge-token:" + projectID }

// queueCommitStatus queues the job that posts the scan's commit status
// after the event (StatusStarted or StatusFinished), when the
// scan is a first scan of a commit of a project with a forge. Failing to
// queue it is logged: the scan goes on.
func (s *Service) queueCommitStatus(ctx context.Context, log *slog.Logger, sc Scan, event string) {
	if sc.Kind != KindCommit || sc.ProjectID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := s.store.GetForge(ctx, sc.ProjectID); errors.Is(err, ErrNotFound) {
		return
	} else if err != nil {
		log.WarnContext(ctx, "commit status not queued", slog.String("event", event), slog.Any("error", err))
		return
	}
	if sc.RescanOf != "" {
		return
	}
	if _, err := s.queue.InsertStatus(ctx, sc.ID, event); err != nil {
		log.WarnContext(ctx, "commit status not queued", slog.String("event", event), slog.Any("error", err))
	}
}

// PostCommitStatus posts the current state of a scan as its commit's
// status: it is the job queue's status runner. It posts what the scan is
// now, not what it was when the job was queued, and checks again after
// posting, so a slow "pending" never lands after the final state.
// A forge's 4xx refusal (other than 429) is final; other errors are
// retried by the queue.
func (s *Service) PostCommitStatus(ctx context.Context, scanID string) error {
	sc, err := s.store.GetScan(ctx, scanID)
	if errors.Is(err, ErrNotFound) {
		return permanent(err)
	}
	if err != nil {
		return err
	}
	if sc.Kind != KindCommit || sc.ProjectID == "" {
		return nil
	}
	if sc.RescanOf != "" {
		return nil
	}
	p, err := s.store.GetProject(ctx, sc.ProjectID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := s.store.GetForge(ctx, p.ID)
	if errors.Is(err, ErrNotFound) {
		return nil // the forge was removed since
	}
	if err != nil {
		return err
	}
	log := s.log.With(slog.String("scan", sc.ID), slog.String("project", p.Name), slog.String("forge", f.APIURL))
	token, err := s.seal.Open(ForgeTokenAAD(p.ID), f.Token)
	if err != nil {
		log.ErrorContext(ctx, "commit status not posted: the forge token does not open with this seal key")
		return permanent(errors.New("ci: forge token does not open"))
	}
	cfg := forge.Config{APIURL: f.APIURL, Token: token, HTTPClient: s.forgeClient, Attempts: 1}

	var posted forge.Status
	for range 3 {
		st, err := s.commitStatus(ctx, sc)
		if err != nil {
			return err
		}
		if st == posted {
			return nil
		}
		if err := forge.PostStatus(ctx, cfg, p.RepoURL, sc.CommitSHA, st); err != nil {
			var fe *forge.Error
			if errors.As(err, &fe) && fe.StatusCode >= 400 && fe.StatusCode < 500 && fe.StatusCode != http.StatusTooManyRequests {
				log.ErrorContext(ctx, "the forge refused the commit status; not retrying", slog.Int("http_status", fe.StatusCode), slog.Any("error", err))
				return permanent(err)
			}
			attempt, maxAttempts := Attempt(ctx)
			log.WarnContext(ctx, "commit status not posted", slog.Int("attempt", attempt), slog.Int("max_attempts", maxAttempts), slog.Any("error", err))
			return err
		}
		log.InfoContext(ctx, "commit status posted", slog.String("state", st.State))
		posted = st
		if sc, err = s.store.GetScan(ctx, scanID); err != nil {
			return err
		}
	}
	return nil
}

// commitStatus is the status that shows the scan's state on its commit.
func (s *Service) commitStatus(ctx context.Context, sc Scan) (forge.Status, error) {
	st := forge.Status{Context: forge.DefaultContext}
	if s.publicURL != "" {
		st.TargetURL = strings.TrimRight(s.publicURL, "/") + "/api/v1/scans/" + sc.ID
	}
	switch sc.Status {
	case ScanQueued:
		st.State, st.Description = forge.StatePending, "Vigil: scan queued"
	case ScanRunning:
		st.State, st.Description = forge.StatePending, "Vigil: scanning"
	case ScanFailed:
		st.State, st.Description = forge.StateError, "Vigil could not scan this commit: "+sc.Error
	default:
		d, err := s.Decide(ctx, sc)
		if err != nil {
			return forge.Status{}, err
		}
		st.State, st.Description = forge.StateFor(d.Decision), statusDescription(d)
	}
	return st, nil
}

// statusDescription sums up a gate decision in a line: how many findings
// and licenses fail it, or why it could not Judge.
func statusDescription(d *Decision) string {
	var findings, licenses int
	for _, r := range d.Reasons {
		switch r.Code {
		case CodeFinding:
			findings++
		case CodeLicenseDenied:
			licenses++
		}
	}
	switch d.Decision {
	case Pass:
		return "Vigil gate passed: no failing findings"
	case Fail:
		msg := fmt.Sprintf("Vigil gate failed: %s", count(findings, "failing finding"))
		if licenses > 0 {
			msg += ", " + count(licenses, "denied license")
		}
		if findings == 0 && licenses == 0 && len(d.Reasons) > 0 {
			msg = "Vigil gate failed: " + d.Reasons[0].Message
		}
		return msg
	}
	if len(d.Reasons) > 0 {
		return "Vigil gate " + d.Decision + ": " + d.Reasons[0].Message
	}
	return "Vigil gate " + d.Decision
}

// count says how many of what there are: "1 finding", "2 findings".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
