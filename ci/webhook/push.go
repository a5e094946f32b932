package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Providers, as they appear in /hooks/{provider}/{project}.
const (
	GitHub  = "github"
	GitLab  = "gitlab"
	Generic = "generic"
)

// Event and delivery headers.
const (
	HeaderGitHubEvent     = "X-GitHub-Event"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
	HeaderGitLabEvent     = "X-Gitlab-Event"
	HeaderGitLabEventUUID = "X-Gitlab-Event-UUID"
	HeaderGenericDelivery = "X-Vigil-Delivery"
)

// zeroSHA is the "after" of a deleted ref (and the "before" of a new one).
const zeroSHA = "0000000000000000000000000000000000000000"

var (
	// ErrIgnored is returned by the Parse functions for deliveries that are
	// well formed but are not pushes: nothing is to be scanned.
	ErrIgnored = errors.New("event ignored")
	// ErrPing is returned for GitHub's ping event, sent when a webhook is
	// created. errors.Is(ErrPing, ErrIgnored) holds.
	ErrPing = fmt.Errorf("%w: ping", ErrIgnored)
	// ErrMalformed is returned, wrapped with what is wrong, for payloads that
	// cannot be read as a push.
	ErrMalformed = errors.New("malformed push payload")
)

// Push is a push to a repository, whatever the forge that reported it.
type Push struct {
	Provider string // GitHub, GitLab or Generic
	Repo     string // clone URL, when the payload gives one
	Ref      string // full ref, such as refs/heads/main or refs/tags/v1.2.0
	Branch   string // the branch name when Ref is under refs/heads/
	Tag      string // the tag name when Ref is under refs/tags/
	Before   string // the ref's commit before the push; zeros for a new ref
	After    string // the ref's object after the push; zeros when deleted
	// Commits are the SHAs to scan, oldest first, ending with the ref's new
	// head commit. Empty when Deleted.
	Commits []string
	// Deleted is true when the push deleted the ref: nothing is to be
	// scanned.
	Deleted bool
	// DeliveryID identifies the delivery, for logs and to tell redeliveries
	// apart; it may be empty.
	DeliveryID string
}

// ParseGitHub reads a GitHub webhook delivery. It returns ErrPing for a
// ping event and ErrIgnored for any other event than push.
//
// A push lists at most a limited number of commits; the head commit
// (head_commit.id, which for an annotated tag is the tagged commit, not the
// tag object in "after") is always the last of Commits.
func ParseGitHub(h http.Header, body []byte) (*Push, error) {
	switch ev := h.Get(HeaderGitHubEvent); ev {
	case "push":
	case "ping":
		return nil, ErrPing
	case "":
		return nil, fmt.Errorf("%w: missing %s header", ErrMalformed, HeaderGitHubEvent)
	default:
		return nil, fmt.Errorf("%w: GitHub event %q", ErrIgnored, ev)
	}
	var doc struct {
		Ref        string `json:"ref"`
		Before     string `json:"before"`
		After      string `json:"after"`
		Deleted    bool   `json:"deleted"`
		Repository struct {
			CloneURL string `json:"clone_url"`
		} `json:"repository"`
		Commits []struct {
			ID string `json:"id"`
		} `json:"commits"`
		HeadCommit *struct {
			ID string `json:"id"`
		} `json:"head_commit"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: GitHub push: %v", ErrMalformed, err)
	}
	p := &Push{
		Provider:   GitHub,
		Repo:       doc.Repository.CloneURL,
		Ref:        doc.Ref,
		Before:     doc.Before,
		After:      doc.After,
		Deleted:    doc.Deleted || doc.After == zeroSHA,
		DeliveryID: h.Get(HeaderGitHubDelivery),
	}
	for _, c := range doc.Commits {
		p.Commits = append(p.Commits, c.ID)
	}
	head := doc.After
	if doc.HeadCommit != nil {
		head = doc.HeadCommit.ID
	}
	return p, p.finish(head)
}

// ParseGitLab reads a GitLab webhook delivery: a Push Hook or a Tag Push
// Hook. Other events are ErrIgnored.
//
// GitLab lists at most 20 commits; the head commit (checkout_sha) is always
// the last of Commits.
func ParseGitLab(h http.Header, body []byte) (*Push, error) {
	switch ev := h.Get(HeaderGitLabEvent); ev {
	case "Push Hook", "Tag Push Hook":
	case "":
		return nil, fmt.Errorf("%w: missing %s header", ErrMalformed, HeaderGitLabEvent)
	default:
		return nil, fmt.Errorf("%w: GitLab event %q", ErrIgnored, ev)
	}
	var doc struct {
		ObjectKind  string `json:"object_kind"`
		Ref         string `json:"ref"`
		Before      string `json:"before"`
		After       string `json:"after"`
		CheckoutSHA string `json:"checkout_sha"`
		Project     struct {
			GitHTTPURL string `json:"git_http_url"`
		} `json:"project"`
		Repository struct {
			GitHTTPURL string `json:"git_http_url"`
		} `json:"repository"`
		Commits []struct {
			ID string `json:"id"`
		} `json:"commits"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: GitLab push: %v", ErrMalformed, err)
	}
	if doc.ObjectKind != "push" && doc.ObjectKind != "tag_push" {
		return nil, fmt.Errorf("%w: GitLab push: object_kind is %q, want push or tag_push", ErrMalformed, doc.ObjectKind)
	}
	repo := doc.Project.GitHTTPURL
	if repo == "" {
		repo = doc.Repository.GitHTTPURL
	}
	p := &Push{
		Provider:   GitLab,
		Repo:       repo,
		Ref:        doc.Ref,
		Before:     doc.Before,
		After:      doc.After,
		Deleted:    doc.After == zeroSHA,
		DeliveryID: h.Get(HeaderGitLabEventUUID),
	}
	for _, c := range doc.Commits {
		p.Commits = append(p.Commits, c.ID)
	}
	head := doc.CheckoutSHA
	if head == "" {
		head = doc.After
	}
	return p, p.finish(head)
}

// ParseGeneric reads Vigil's own push payload, for forges and scripts that
// are neither GitHub nor GitLab (see the package documentation).
func ParseGeneric(h http.Header, body []byte) (*Push, error) {
	var doc struct {
		Repo    string `json:"repo"`
		Ref     string `json:"ref"`
		Before  string `json:"before"`
		After   string `json:"after"`
		Deleted bool   `json:"deleted"`
		Commits []struct {
			ID string `json:"id"`
		} `json:"commits"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: generic push: %v", ErrMalformed, err)
	}
	ref := doc.Ref
	if ref != "" && !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	p := &Push{
		Provider:   Generic,
		Repo:       doc.Repo,
		Ref:        ref,
		Before:     doc.Before,
		After:      doc.After,
		Deleted:    doc.Deleted || doc.After == zeroSHA,
		DeliveryID: h.Get(HeaderGenericDelivery),
	}
	for _, c := range doc.Commits {
		p.Commits = append(p.Commits, c.ID)
	}
	return p, p.finish(doc.After)
}

// finish fills Branch and Tag, makes head the last commit and checks every
// SHA, so that nothing but hex ever reaches git.
func (p *Push) finish(head string) error {
	switch {
	case p.Ref == "":
		return fmt.Errorf("%w: %s push: missing ref", ErrMalformed, p.Provider)
	case strings.HasPrefix(p.Ref, "refs/heads/"):
		p.Branch = strings.TrimPrefix(p.Ref, "refs/heads/")
	case strings.HasPrefix(p.Ref, "refs/tags/"):
		p.Tag = strings.TrimPrefix(p.Ref, "refs/tags/")
	}
	for name, sha := range map[string]string{"before": p.Before, "after": p.After} {
		if sha != "" && !isSHA(sha) {
			return fmt.Errorf("%w: %s push: %s %q is not a commit SHA", ErrMalformed, p.Provider, name, sha)
		}
	}
	if p.Deleted {
		p.Commits = nil
		return nil
	}
	if head != "" && head != zeroSHA && (len(p.Commits) == 0 || p.Commits[len(p.Commits)-1] != head) {
		p.Commits = append(p.Commits, head)
	}
	seen := make(map[string]bool, len(p.Commits))
	out := p.Commits[:0]
	for i, c := range p.Commits {
		if !isSHA(c) {
			return fmt.Errorf("%w: %s push: commits[%d] %q is not a commit SHA", ErrMalformed, p.Provider, i, c)
		}
		c = strings.ToLower(c)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	p.Commits = out
	if len(p.Commits) == 0 {
		return fmt.Errorf("%w: %s push: no commits and no head commit", ErrMalformed, p.Provider)
	}
	return nil
}

// isSHA reports whether s is a SHA-1 or SHA-256 object name in hex.
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
