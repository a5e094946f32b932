package reports

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/scanner/image"
)

// Releases as they are stored: a product, a version and the scans the
// release is made of, named by ID (the Service reads their results when a
// report is built). A release never changes once made; its status follows
// from its scans, which the store reads with it.

// ReleaseStatus is where a stored release is.
//
//	pending ──> ready    (every scan has succeeded)
//	   └──────> failed   (a scan failed)
//
// A release is made ready when every scan it names has succeeded, and
// pending when it asked for the scans it lacked (NewRelease.ScanMissing).
// Its status is not stored: it is computed on every read from its scans'
// statuses, so it changes as soon as the last scan finishes, whichever
// process ran it, and cannot be lost in a crash. A succeeded scan is
// final, so a ready release stays ready; a failed scan is final too.
type ReleaseStatus string

// The statuses of a release.
const (
	ReleasePending ReleaseStatus = "pending"
	ReleaseReady   ReleaseStatus = "ready"
	ReleaseFailed  ReleaseStatus = "failed"
)

// StoredRelease is a release of a product as the store keeps it.
type StoredRelease struct {
	ID        string
	ProductID string
	Version   string // unique per product
	CreatedAt time.Time
	// Items are the commits and image digests the release is made of, in
	// the order they were given.
	Items []ReleaseItem

	// Status follows from the items' scans (see ReleaseStatus); Error
	// names the scans that failed, "" unless Status is ReleaseFailed.
	Status ReleaseStatus
	Error  string
}

// ReleaseItem is one commit of a project, or one image digest, of a
// release, with the scan that stands for it.
type ReleaseItem struct {
	Kind     ci.ScanKind // ci.KindCommit or ci.KindImage
	Project  string      // KindCommit: the project's name
	Commit   string      // KindCommit: the full commit ID
	ImageRef string      // KindImage: the reference it was named by, "" if none
	Digest   string      // KindImage: "sha256:…"
	ScanID   string

	// ScanStatus and ScanError are the scan's status and error as they
	// were when the release was read.
	ScanStatus ci.ScanStatus
	ScanError  string
}

// Target names what the item is: "PROJECT@COMMIT", or "REF@DIGEST" (the
// digest alone without a reference).
func (it ReleaseItem) Target() string {
	if it.Kind == ci.KindImage {
		if it.ImageRef == "" {
			return it.Digest
		}
		return it.ImageRef + "@" + it.Digest
	}
	return it.Project + "@" + it.Commit
}

// settle sets the release's Status and Error from its items' scans.
func (r *StoredRelease) settle() {
	var failed []string
	r.Status = ReleaseReady
	for _, it := range r.Items {
		switch it.ScanStatus {
		case ci.ScanSucceeded:
		case ci.ScanFailed:
			failed = append(failed, fmt.Sprintf("the scan of %s failed: %s", it.Target(), it.ScanError))
		default:
			r.Status = ReleasePending
		}
	}
	r.Error = ""
	if len(failed) > 0 {
		r.Status, r.Error = ReleaseFailed, strings.Join(failed, "; ")
	}
}

// NewRelease is a release as its creator asks for it.
type NewRelease struct {
	ProductID string // a licensing product's ID
	Version   string // 1 to 100 letters, digits, '.', '_', '+' or '-'
	// Projects are "NAME" (the newest succeeded scan of the project's
	// default branch) or "NAME@COMMIT" (the full commit ID).
	Projects []string
	// Images are "REF@DIGEST" ("registry.example.com/app:1.4@sha256:…"),
	// or a digest reference without a tag.
	Images []string
	// ScanMissing asks for the scans of the commits and images that have
	// no succeeded scan, instead of refusing the release: it is then
	// pending until they finish.
	ScanMissing bool
}

// versionRE is what a release version may be: semantic versions with
// build metadata, dates, names.
var versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$`)

// commitRE is a full SHA-1 or SHA-256 commit ID.
var commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// projectTarget is a project as NewRelease.Projects names it: commit is
// "" for its default branch.
type projectTarget struct{ name, commit string }

func parseProject(s string) (projectTarget, error) {
	name, commit, hasCommit := strings.Cut(strings.TrimSpace(s), "@")
	commit = strings.ToLower(commit)
	switch {
	case name == "":
		return projectTarget{}, fmt.Errorf("%w: project %q: want NAME or NAME@COMMIT", ErrInvalid, s)
	case hasCommit && !commitRE.MatchString(commit):
		return projectTarget{}, fmt.Errorf("%w: project %q: the commit must be a full commit ID (40 or 64 hex digits)", ErrInvalid, s)
	}
	return projectTarget{name, commit}, nil
}

// parseImage reads "REF@DIGEST": the digest, and the reference in its
// full form ("index.docker.io/library/alpine:3.20", without a tag when
// none was given).
func parseImage(s string) (ref, digest string, err error) {
	s = strings.TrimSpace(s)
	bad := func(why string) error {
		return fmt.Errorf("%w: image %q: %s", ErrInvalid, s, why)
	}
	if strings.HasPrefix(s, image.OCIPrefix) || strings.HasPrefix(s, image.ArchivePrefix) {
		return "", "", bad("a release names registry images only")
	}
	d, err := name.NewDigest(s)
	if err != nil {
		return "", "", bad("want REF@DIGEST, like registry.example.com/app:1.4@sha256:<64 hex>")
	}
	digest = d.DigestStr()
	if !strings.HasPrefix(digest, "sha256:") && !strings.HasPrefix(digest, "sha512:") {
		return "", "", bad("the digest must be sha256:<64 hex> or sha512:<128 hex>")
	}
	// The reference keeps a tag only if one was given.
	base, _, _ := strings.Cut(s, "@")
	ref = d.Context().Name()
	if strings.Contains(base[strings.LastIndex(base, "/")+1:], ":") {
		if t, err := name.NewTag(base); err == nil {
			ref = t.Name()
		}
	}
	return ref, digest, nil
}

// MissingScansError refuses a release some of whose commits or images
// have no succeeded scan: it names each, with where its scan is. It is
// ErrInvalid; NewRelease.ScanMissing asks for the scans instead.
type MissingScansError struct {
	Missing []MissingScan
}

// MissingScan is a commit or image without a succeeded scan.
type MissingScan struct {
	// Target is what ReleaseItem.Target names, or the project's name for
	// a default branch.
	Target string `json:"target"`
	// Status is where its scan is: "never scanned", "queued", "running",
	// "failed: <why>", or for a default branch "no succeeded scan of its
	// default branch B".
	Status string `json:"status"`
}

func (e *MissingScansError) Error() string {
	parts := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		parts[i] = m.Target + " (" + m.Status + ")"
	}
	return "no succeeded scan of " + strings.Join(parts, ", ") +
		": wait for the scans, or ask for the missing ones (scan_missing, --scan-missing)"
}

// Is makes a MissingScansError an ErrInvalid.
func (e *MissingScansError) Is(target error) bool { return target == ErrInvalid }
