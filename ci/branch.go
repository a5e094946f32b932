package ci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Branches are derived from the repository, never taken from a caller:
// a push webhook's ref or the "branch" of POST /api/v1/scans could name
// the default branch for a commit that is not on it, which would make
// an unmerged commit the baseline of change gates and mark findings
// fixed. The worker, once it has cloned the repository, records the
// branch commitBranch finds.

// commitBranch finds, in a clone of the repository, the branch a commit is
// on: the default branch when its head reaches the commit, else the first
// (by name) other branch whose head does, else "". Where the commit was
// pushed or what a client said does not count: only the repository's
// branches do.
func commitBranch(ctx context.Context, dir, commit, defaultBranch string) (string, error) {
	if defaultBranch != "" {
		ok, err := isAncestor(ctx, dir, commit, "refs/remotes/origin/"+defaultBranch)
		if err != nil {
			return "", err
		}
		if ok {
			return defaultBranch, nil
		}
	}
	out, err := gitIn(ctx, dir, "for-each-ref", "--contains="+commit, "--format=%(refname)", "refs/remotes/origin/")
	if err != nil {
		return "", err
	}
	var names []string
	for _, ref := range strings.Split(strings.TrimSpace(out), "\n") {
		name, ok := strings.CutPrefix(ref, "refs/remotes/origin/")
		if ok && name != "HEAD" && name != defaultBranch {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	return slices.Min(names), nil
}

// isAncestor reports whether commit is reachable from ref. A ref that
// does not exist reaches nothing.
func isAncestor(ctx context.Context, dir, commit, ref string) (bool, error) {
	if _, err := gitIn(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}"); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, nil
	}
	cmd := exec.CommandContext(ctx, "git", "merge-base", "--is-ancestor", "--end-of-options", commit, ref) // #nosec G204 -- fixed command, "--end-of-options" ends options
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == 1 {
		return false, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, fmt.Errorf("git merge-base --is-ancestor %s %s: %v: %s", commit, ref, err, strings.TrimSpace(stderr.String()))
	}
	return true, nil
}

// gitIn runs git in dir and returns its output.
func gitIn(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...) // #nosec G204 -- fixed command; callers end options before input
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
