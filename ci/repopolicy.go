package ci

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// repoPolicy is the policy file a commit carries (RepoPolicyFile at its
// root), as the worker found it in the checkout. It is kept with the
// scan (in its gate summary and its ScanArtifacts manifest): the file of a
// commit never changes, so a decision cached under the scan's ID stays
// right, and SHA256 records which file decided.
type repoPolicy struct {
	Present bool   `json:"present"`
	SHA256  string `json:"sha256,omitempty"` // of Body
	Body    string `json:"body,omitempty"`
	// Err says why the file could not be used (a symbolic link, too
	// large): the gate fails naming the file rather than ignoring it.
	Err string `json:"error,omitempty"`
}

// readRepoPolicy reads the repository's policy file in a checkout. A
// symbolic link is refused rather than followed: it could point out of
// the checkout, at a file of the server's.
func readRepoPolicy(root string) *repoPolicy {
	p := filepath.Join(root, RepoPolicyFile)
	st, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &repoPolicy{}
	case err != nil:
		return &repoPolicy{Present: true, Err: "cannot be read"}
	case st.Mode()&fs.ModeSymlink != 0:
		return &repoPolicy{Present: true, Err: "is a symbolic link; the server reads a regular file only"}
	case !st.Mode().IsRegular():
		return &repoPolicy{Present: true, Err: "is not a regular file"}
	case st.Size() > MaxPolicySize:
		return &repoPolicy{Present: true, Err: fmt.Sprintf("is larger than %d bytes", MaxPolicySize)}
	}
	f, err := os.Open(p)
	if err != nil {
		return &repoPolicy{Present: true, Err: "cannot be read"}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	switch {
	case err != nil:
		return &repoPolicy{Present: true, Err: "cannot be read"}
	case len(b) > MaxPolicySize:
		return &repoPolicy{Present: true, Err: fmt.Sprintf("is larger than %d bytes", MaxPolicySize)}
	}
	sum := sha256.Sum256(b)
	return &repoPolicy{Present: true, SHA256: hex.EncodeToString(sum[:]), Body: string(b)}
}

// repoPolicyName names the file of a commit in messages.
func repoPolicyName(commit string) string {
	return RepoPolicyFile + " at " + commit
}

// parse returns the repository's policy, nil when the commit has none.
// A file that cannot be used is a *PolicyError naming it.
func (rp *repoPolicy) parse(commit string) (*Policy, error) {
	if rp == nil || !rp.Present {
		return nil, nil
	}
	name := repoPolicyName(commit)
	if rp.Err != "" {
		return nil, &PolicyError{File: name, Msg: rp.Err}
	}
	return ParsePolicy(name, []byte(rp.Body))
}
