package scanner

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Kind says what sort of thing a Target is.
type Kind string

// The kinds of target Vigil scans.
const (
	KindDir   Kind = "dir"   // a directory on disk
	KindGit   Kind = "git"   // one commit of a git repository, checked out into a workspace
	KindImage Kind = "image" // a container image
)

// Target is one thing to scan. Dir and Git targets have a Path on disk; an
// Image target carries the resolved image.
type Target struct {
	Kind Kind
	// Ref is what the user named: a path, a repository URL, an image
	// reference, "oci:DIR" or "archive:FILE".
	Ref string
	// Path is the directory whose files are scanned (Dir and Git targets).
	Path string
	// Commit is the full SHA of a Git target.
	Commit string
	// Image is the resolved image of an Image target.
	Image v1.Image
	// Digest is the image's manifest digest ("sha256:…").
	Digest string
	// Platform is the image's platform ("linux/amd64") when known.
	Platform string
}

// Info is the part of a Target that is reported: everything but the image
// handle and the workspace path.
func (t *Target) Info() TargetInfo {
	return TargetInfo{Kind: t.Kind, Ref: t.Ref, Commit: t.Commit, Digest: t.Digest, Platform: t.Platform}
}

// TargetInfo describes a scanned target in reports.
type TargetInfo struct {
	Kind     Kind   `json:"kind"`
	Ref      string `json:"ref"`
	Commit   string `json:"commit,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
}
