package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Commit status states.
const (
	StateSuccess = "success"
	StateFailure = "failure"
	StatePending = "pending"
	StateError   = "error"
)

// DefaultContext is the status context used when Status.Context is empty.
const DefaultContext = "vigil/gate"

// MaxDescription is the longest description GitHub accepts, in characters;
// longer ones are shortened.
const MaxDescription = 140

const (
	maxResponseBytes = 64 << 10
	attempts         = 3 // the first try and two retries of a 5xx
	defaultTimeout   = 30 * time.Second
	defaultRetryWait = 500 * time.Millisecond
)

// Config says which forge API to call and how.
type Config struct {
	// APIURL is the base of the forge's API: https://api.github.com,
	// https://HOST/api/v3 for GitHub Enterprise, https://HOST/api/v1 for
	// Gitea. Required.
	APIURL string
	// Token is sent as "Authorization: Bearer"; it needs the right to
	// write commit statuses (repo:status on GitHub). Required.
	Token string
	// HTTPClient makes the requests; nil means one with a 30s timeout.
	HTTPClient *http.Client
	// RetryWait is the wait before the first retry of a 5xx answer or a
	// failed connection, doubled for the second; zero means 500ms.
	RetryWait time.Duration
	// Attempts is how many times PostStatus tries (1 leaves retries to
	// the caller, a job queue say); zero means 3.
	Attempts int
}

// Status is one commit status, in the forge's JSON.
type Status struct {
	State       string `json:"state"` // StateSuccess, StateFailure, StatePending or StateError
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context"`
}

// StateFor is the status state for a gate decision (ci.Pass, ci.Fail,
// ci.Pending, ci.Unknown): pass is success, fail is failure, pending is
// pending, and unknown (or anything else) is error, so that a commit the
// gate could not judge never shows green. The decisions are spelt out
// here because package ci, whose Service posts statuses, imports this
// one; TestStateFor holds them to ci's constants.
func StateFor(decision string) string {
	switch decision {
	case "pass":
		return StateSuccess
	case "fail":
		return StateFailure
	case "pending":
		return StatePending
	}
	return StateError
}

// Error is a forge's refusal of a status.
type Error struct {
	Repo       string // owner/repo
	StatusCode int
	Message    string // the forge's message, when it gave one
}

func (e *Error) Error() string {
	s := fmt.Sprintf("post commit status to %s: forge answered %d", e.Repo, e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

var shaRE = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)

// PostStatus sets the status st on commit sha of repo, given as a clone URL
// (https, ssh or scp-style) or as owner/repo. A 5xx answer or a failed
// connection is tried again twice, with backoff (see Config.Attempts). Errors name the repository
// and the forge's answer, never the token.
func PostStatus(ctx context.Context, cfg Config, repo, sha string, st Status) error {
	owner, name, err := ParseRepo(repo)
	if err != nil {
		return err
	}
	full := owner + "/" + name
	if cfg.APIURL == "" || cfg.Token == "" {
		return fmt.Errorf("post commit status to %s: the forge API URL and token are required", full)
	}
	if !shaRE.MatchString(sha) {
		return fmt.Errorf("post commit status to %s: %q is not a commit SHA", full, sha)
	}
	switch st.State {
	case StateSuccess, StateFailure, StatePending, StateError:
	default:
		return fmt.Errorf("post commit status to %s: state %q is not success, failure, pending or error", full, st.State)
	}
	if st.Context == "" {
		st.Context = DefaultContext
	}
	st.Description = truncate(st.Description, MaxDescription)
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	endpoint := strings.TrimRight(cfg.APIURL, "/") + "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + sha

	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	wait := cfg.RetryWait
	if wait == 0 {
		wait = defaultRetryWait
	}
	tries := cfg.Attempts
	if tries <= 0 {
		tries = attempts
	}
	for try := 1; ; try++ {
		err := post(ctx, hc, endpoint, cfg.Token, body, full)
		var fe *Error
		retry := err != nil && ctx.Err() == nil &&
			(!errors.As(err, &fe) || fe.StatusCode >= 500)
		if !retry || try >= tries {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (then %w)", err, ctx.Err())
		case <-t.C:
		}
		wait *= 2
	}
}

func post(ctx context.Context, hc *http.Client, endpoint, token string, body []byte, repo string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post commit status to %s: %w", repo, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := hc.Do(req)
	if err != nil {
		// A *url.Error names the URL, which holds no secret.
		return fmt.Errorf("post commit status to %s: %w", repo, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	e := &Error{Repo: repo, StatusCode: resp.StatusCode}
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &msg) == nil {
		e.Message = truncate(strings.ReplaceAll(msg.Message, token, "[token]"), 200)
	}
	return e
}

// truncate shortens s to at most n characters, ending with "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ParseRepo finds owner and repository in a clone URL or an owner/repo:
//
//	owner/repo
//	https://github.com/owner/repo(.git)
//	ssh://git@github.com(:22)/owner/repo(.git)
//	git@github.com:owner/repo(.git)
//	file:///srv/git/owner/repo(.git) (the last two directories)
func ParseRepo(s string) (owner, repo string, err error) {
	path := strings.TrimSpace(s)
	switch {
	case strings.Contains(path, "://"):
		u, err := url.Parse(path)
		if err != nil {
			// Not err: it quotes the URL, which may hold credentials.
			return "", "", errors.New("repository URL cannot be parsed")
		}
		path = u.Path
		if u.Scheme == "file" {
			// A local clone, a mirror say: its last two directories.
			path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
			if i := strings.LastIndex(path, "/"); i > 0 {
				if j := strings.LastIndex(path[:i], "/"); j >= 0 {
					path = path[j+1:]
				}
			}
		}
	case strings.Contains(path, ":"): // scp-style: user@host:owner/repo
		_, path, _ = strings.Cut(path, ":")
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	parts := strings.Split(path, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", fmt.Errorf("repository %q is not owner/repo or a clone URL of one", redact(s))
	}
	return parts[0], parts[1], nil
}

// redact drops the credentials of a URL that has them: a token may be
// the user name as well as the password.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}
