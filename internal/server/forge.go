package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/forge"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/internal/store"
)

// Commit statuses back to the forge. A project created with a "forge"
// (an API base and a token) gets the state of each first scan of its
// commits as the commit status "vigil/gate": pending when the scan
// starts, then success or failure from the gate decision, or error when
// the scan failed. Rescans (scheduled, trigger "schedule") post nothing:
// they must not change what a merge check of the commit reads.
//
// Posting is a job of its own on the queue (jobs.StatusArgs), with
// retries, so a forge that is down never blocks or fails a scan.

// Limits on the forge of a project.
const (
	maxForgeURL   = 2048
	maxForgeToken = 1024
)

// forgeStatusTimeout bounds one request to a forge.
const forgeStatusTimeout = 30 * time.Second

// ProjectForge is a project's forge as the API shows it: the token is
// never shown.
type ProjectForge struct {
	URL string `json:"url"`
}

// forgeRequest is the "forge" of a project create request.
type forgeRequest struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// validate checks the forge of a project whose repository is repoURL. The
// token goes over the network only to an https URL, or to http on a
// loopback address (a forge on the same host, tests).
func (f *forgeRequest) validate(repoURL string) error {
	f.URL = strings.TrimRight(strings.TrimSpace(f.URL), "/")
	if f.URL == "" {
		return invalidField("forge.url is required with a forge: the API base, like https://api.github.com")
	}
	if err := httpx.CheckIdentifier("forge.url", f.URL, maxForgeURL); err != nil {
		return err
	}
	u, err := url.Parse(f.URL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return invalidField("forge.url %q: want an API base URL like https://api.github.com, https://HOST/api/v3 or https://HOST/api/v1, without credentials, query or fragment", redactURL(f.URL))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && httpx.IsLoopbackHost(u.Hostname()):
	default:
		return invalidField("forge.url %q: want https (http only on a loopback address), so the token is not sent in the clear", f.URL)
	}
	if f.Token == "" || len(f.Token) > maxForgeToken || strings.ContainsFunc(f.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalidField("forge.token: want 1 to %d characters without spaces or control characters", maxForgeToken)
	}
	if _, _, err := forge.ParseRepo(repoURL); err != nil {
		return invalidField("forge: commit statuses need a repo_url of the form HOST/OWNER/REPO: %v", err)
	}
	return nil
}

// redactURL drops what a URL holds before its host, credentials included.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// forgeTokenAAD binds a sealed forge token to its project.
func forgeTokenAAD(projectID string) string { return "forge-token:" + projectID }

// queueCommitStatus queues the job that posts the scan's commit status
// after the event (jobs.StatusStarted or jobs.StatusFinished), when the
// scan is a first scan of a commit of a project with a forge. Failing to
// queue it is logged: the scan goes on.
func (s *Server) queueCommitStatus(ctx context.Context, log *slog.Logger, sc ci.Scan, event string) {
	if sc.Kind != ci.KindCommit || sc.ProjectID == "" {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := s.db.GetForge(ctx, sc.ProjectID); errors.Is(err, store.ErrNotFound) {
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
func (s *Server) PostCommitStatus(ctx context.Context, scanID string) error {
	sc, err := s.db.GetScan(ctx, scanID)
	if errors.Is(err, store.ErrNotFound) {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if sc.Kind != ci.KindCommit || sc.ProjectID == "" {
		return nil
	}
	if sc.RescanOf != "" {
		return nil
	}
	p, err := s.db.GetProject(ctx, sc.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := s.db.GetForge(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the forge was removed since
	}
	if err != nil {
		return err
	}
	log := s.log.With(slog.String("scan", sc.ID), slog.String("project", p.Name), slog.String("forge", f.APIURL))
	token, err := s.seal.open(forgeTokenAAD(p.ID), f.Token)
	if err != nil {
		log.ErrorContext(ctx, "commit status not posted: the forge token does not open with this seal key")
		return jobs.Permanent(errors.New("server: forge token does not open"))
	}
	hc := s.cfg.ForgeHTTPClient
	if hc == nil {
		hc = s.outbound.Client(forgeStatusTimeout)
	}
	cfg := forge.Config{APIURL: f.APIURL, Token: token, HTTPClient: hc, Attempts: 1}

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
				return jobs.Permanent(err)
			}
			attempt, maxAttempts := jobs.Attempt(ctx)
			log.WarnContext(ctx, "commit status not posted", slog.Int("attempt", attempt), slog.Int("max_attempts", maxAttempts), slog.Any("error", err))
			return err
		}
		log.InfoContext(ctx, "commit status posted", slog.String("state", st.State))
		posted = st
		if sc, err = s.db.GetScan(ctx, scanID); err != nil {
			return err
		}
	}
	return nil
}

// commitStatus is the status that shows the scan's state on its commit.
func (s *Server) commitStatus(ctx context.Context, sc ci.Scan) (forge.Status, error) {
	st := forge.Status{Context: forge.DefaultContext}
	if s.cfg.PublicURL != "" {
		st.TargetURL = strings.TrimRight(s.cfg.PublicURL, "/") + "/api/v1/scans/" + sc.ID
	}
	switch sc.Status {
	case ci.ScanQueued:
		st.State, st.Description = forge.StatePending, "Vigil: scan queued"
	case ci.ScanRunning:
		st.State, st.Description = forge.StatePending, "Vigil: scanning"
	case ci.ScanFailed:
		st.State, st.Description = forge.StateError, "Vigil could not scan this commit: "+sc.Error
	default:
		d, err := s.decide(ctx, sc)
		if err != nil {
			return forge.Status{}, err
		}
		st.State, st.Description = forge.StateFor(d.Decision), statusDescription(d)
	}
	return st, nil
}

// statusDescription sums up a gate decision in a line: how many findings
// and licenses fail it, or why it could not judge.
func statusDescription(d *ci.Decision) string {
	var findings, licenses int
	for _, r := range d.Reasons {
		switch r.Code {
		case ci.CodeFinding:
			findings++
		case ci.CodeLicenseDenied:
			licenses++
		}
	}
	switch d.Decision {
	case ci.Pass:
		return "Vigil gate passed: no failing findings"
	case ci.Fail:
		msg := fmt.Sprintf("Vigil gate failed: %s", plural(findings, "failing finding"))
		if licenses > 0 {
			msg += ", " + plural(licenses, "denied license")
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

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// validPublicURL checks Config.PublicURL: empty, or an absolute http(s)
// URL without credentials, query or fragment.
func validPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("server: public URL %q: want an http(s) base URL like https://vigil.example.com:8443, without credentials, query or fragment", redactURL(s))
	}
	return nil
}
