package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vigil-sec/vigil/scanner"
)

// Workspace is a commit checked out into a temporary directory.
type Workspace struct {
	Target *scanner.Target
	dir    string
}

// Close removes the workspace directory.
func (w *Workspace) Close() error {
	if w == nil || w.dir == "" {
		return nil
	}
	return os.RemoveAll(w.dir)
}

// IsRepoURL reports whether s names a remote repository rather than a
// local path: a URL with a scheme (https://, ssh://, file://, git://) or an
// scp-like address (git@host:org/repo.git).
func IsRepoURL(s string) bool {
	if strings.Contains(s, "://") {
		return true
	}
	at, colon := strings.Index(s, "@"), strings.Index(s, ":")
	return at > 0 && colon > at && !strings.Contains(s[:colon], "/")
}

// Checkout clones repo (a local path or a URL) into a new temporary
// directory and checks rev (a SHA, a branch, a tag; "" means HEAD) out
// there, with any protocol but remote helpers (see Policy). The caller
// must Close the workspace.
//
// A repository that does not exist locally, a rev that names no commit,
// or input that git could read as an option is an error wrapping
// scanner.ErrUsage; a remote that cannot be reached is a plain error.
func Checkout(ctx context.Context, repo, rev string) (*Workspace, error) {
	return (*Policy)(nil).Checkout(ctx, repo, rev)
}

// Checkout is the package's Checkout under the policy p.
func (p *Policy) Checkout(ctx context.Context, repo, rev string) (*Workspace, error) {
	if err := CheckRev(rev); err != nil {
		return nil, err
	}
	r, _, err := p.Check(ctx, repo)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("git"); err != nil {
		return nil, fmt.Errorf("checking out %s: the git command is needed and was not found in PATH", redactRepo(repo))
	}
	src := repo
	if !IsRepoURL(repo) {
		abs, err := filepath.Abs(repo)
		if err != nil {
			return nil, fmt.Errorf("%w: repository path %q: %v", scanner.ErrUsage, repo, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("%w: repository %q does not exist", scanner.ErrUsage, repo)
		}
		if _, err := p.Git(ctx, abs, "", "rev-parse", "--git-dir"); err != nil {
			return nil, fmt.Errorf("%w: %q is not a git repository", scanner.ErrUsage, repo)
		}
		src = abs
	}

	dir, err := os.MkdirTemp("", "vigil-src-")
	if err != nil {
		return nil, fmt.Errorf("creating a workspace: %w", err)
	}
	ws := &Workspace{dir: dir}
	fail := func(err error) (*Workspace, error) {
		_ = ws.Close()
		return nil, err
	}

	if _, err := p.Git(ctx, "", src, "clone", "--quiet", "--no-checkout", "--", src, dir); err != nil {
		if errors.Is(err, scanner.ErrUsage) {
			return fail(err)
		}
		if r.Protocol == ProtocolFile {
			return fail(fmt.Errorf("%w: cloning %s: %v", scanner.ErrUsage, redactRepo(repo), err))
		}
		return fail(fmt.Errorf("cloning %s: %w", redactRepo(repo), err))
	}
	if rev == "" {
		rev = "HEAD"
	}
	sha, err := resolve(ctx, p, dir, rev)
	if err != nil {
		// A commit that no branch or tag reaches is not cloned: ask the
		// remote for it by name before giving up.
		if _, ferr := p.Git(ctx, dir, src, "fetch", "--quiet", "--end-of-options", "origin", rev); ferr == nil {
			sha, err = resolve(ctx, p, dir, "FETCH_HEAD")
		}
		if err != nil {
			return fail(fmt.Errorf("%w: %q names no commit in %s", scanner.ErrUsage, rev, redactRepo(repo)))
		}
	}
	if _, err := p.Git(ctx, dir, "", "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha); err != nil {
		return fail(fmt.Errorf("checking out %s of %s: %w", sha, redactRepo(repo), err))
	}
	ws.Target = &scanner.Target{Kind: scanner.KindGit, Ref: repo, Path: dir, Commit: sha}
	return ws, nil
}

// resolve turns a rev into a full commit SHA. Remote branches are tried
// after local names, since a fresh clone has only the default branch.
func resolve(ctx context.Context, p *Policy, dir, rev string) (string, error) {
	var firstErr error
	for _, r := range []string{rev, "origin/" + rev} {
		out, err := p.Git(ctx, dir, "", "rev-parse", "--verify", "--quiet", "--end-of-options", r+"^{commit}")
		if sha := strings.TrimSpace(out); err == nil && isHex(sha) {
			return sha, nil
		}
		if err == nil {
			err = fmt.Errorf("git rev-parse %q: not a commit ID", r)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

// gitMessage picks the line of git's stderr that says what failed.
func gitMessage(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "error:") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// isHex reports whether s is a full commit ID (SHA-1 or SHA-256).
func isHex(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
