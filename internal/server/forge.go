package server

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci/forge"
	"github.com/vigil-sec/vigil/internal/httpx"
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
