package reports

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/scanner"
)

// Release is a named, immutable set of scans of one product: the scans a
// report is made of. A product's latest report is its newest release.
type Release struct {
	// ProductID and ProductName name the licensing product released.
	ProductID   string `json:"product_id"`
	ProductName string `json:"product_name"`
	// Version is the product's version as the vendor names it ("1.4.0").
	Version string `json:"version"`
	// Created is when the release was cut. Documents take their dates
	// from it (never from the clock), so that they are reproducible.
	Created time.Time `json:"created"`
	// Scans are the scans the release is made of, one per repository
	// commit and one per image digest, in any order: writers put them in
	// the order of SortedScans.
	Scans []ReleaseScan `json:"scans"`
}

// ReleaseScan is one succeeded scan of a release: a repository at a commit
// (Project, Repository, Commit) or an image at a digest (Image, Digest),
// with what the report says about it as it stood when the release was cut.
type ReleaseScan struct {
	// Project is the Vigil project's name; set for a repository scan.
	Project string `json:"project,omitempty"`
	// Repository is the repository's URL.
	Repository string `json:"repository,omitempty"`
	// Commit is the full commit SHA that was scanned.
	Commit string `json:"commit,omitempty"`
	// Image is the image reference as named ("registry/repo:tag"); set
	// for an image scan.
	Image string `json:"image,omitempty"`
	// Digest is the image's manifest digest ("sha256:…").
	Digest string `json:"digest,omitempty"`
	// PolicyVersion names the version of the policy the scan was judged
	// by.
	PolicyVersion string `json:"policy_version,omitempty"`
	// Result is the scan's result: its engines and their versions, its
	// start and finish times, its findings with their suppressions (the
	// waivers that applied when the release was cut, as ci.Evaluate sets
	// them) and its SBOM's components.
	Result *scanner.Result `json:"result"`
	// Gate is the scan's gate decision when the release was cut; its
	// LICENSE_DENIED reasons name the components under denied licenses.
	// Nil when unknown.
	Gate *ci.Decision `json:"gate,omitempty"`
	// Waivers are the project's waivers as they stood when the release
	// was cut, expired ones included: owner, reason, expiry and what each
	// covers (rule, path glob, fingerprint).
	Waivers []ci.Waiver `json:"waivers,omitempty"`
	// GateHistory lists the gate decisions taken on the project or image
	// before the release, for the report's chart of the last 90 days.
	GateHistory []GatePoint `json:"gate_history,omitempty"`
}

// GatePoint is one gate decision in a target's history.
type GatePoint struct {
	At time.Time `json:"at"`
	// Decision is ci.Pass, ci.Fail, ci.Pending or ci.Unknown.
	Decision string `json:"decision"`
}

// Recipient is who a report is prepared for: a licensing tenant, and the
// support ticket that asked for it. Both are printed on every page.
type Recipient struct {
	TenantID   string `json:"tenant_id"`
	TenantName string `json:"tenant_name"`
	// Ticket is the ticket's number as people quote it ("1042").
	Ticket string `json:"ticket"`
}

// IsImage reports whether the scan is of an image rather than a
// repository.
func (s *ReleaseScan) IsImage() bool { return s.Image != "" }

// Name is how reports name the scanned target: the project, or the image
// reference.
func (s *ReleaseScan) Name() string {
	if s.IsImage() {
		return s.Image
	}
	return s.Project
}

// Components returns the components of the scan's SBOM, nil when the sbom
// engine did not run.
func (s *ReleaseScan) Components() []scanner.Component {
	if s.Result == nil || s.Result.SBOM == nil {
		return nil
	}
	return s.Result.SBOM.Components
}

// SortedScans returns the release's scans in the order every document
// lists them: repositories by project and commit, then images by
// reference and digest.
func (r *Release) SortedScans() []*ReleaseScan {
	out := make([]*ReleaseScan, len(r.Scans))
	for i := range r.Scans {
		out[i] = &r.Scans[i]
	}
	slices.SortStableFunc(out, func(a, b *ReleaseScan) int {
		if a.IsImage() != b.IsImage() {
			if a.IsImage() {
				return 1
			}
			return -1
		}
		return cmp.Or(
			cmp.Compare(a.Project, b.Project), cmp.Compare(a.Commit, b.Commit),
			cmp.Compare(a.Image, b.Image), cmp.Compare(a.Digest, b.Digest),
		)
	})
	return out
}

// Validate checks that the release can be reported on: a product, a
// version and a creation time, and scans that each name one repository
// commit or one image digest, once, with a result. Its errors wrap
// scanner.ErrUsage.
func (r *Release) Validate() error {
	var problems []string
	if strings.TrimSpace(r.ProductID) == "" {
		problems = append(problems, "no product ID")
	}
	if strings.TrimSpace(r.Version) == "" {
		problems = append(problems, "no version")
	}
	if r.Created.IsZero() {
		problems = append(problems, "no creation time")
	}
	seen := map[string]bool{}
	for i := range r.Scans {
		s := &r.Scans[i]
		var key string
		switch {
		case s.IsImage() && (s.Project != "" || s.Commit != ""):
			problems = append(problems, fmt.Sprintf("scans[%d] names both an image and a project", i))
		case s.IsImage() && !strings.HasPrefix(s.Digest, "sha256:"):
			problems = append(problems, fmt.Sprintf("scans[%d]: image %s has no sha256 digest", i, s.Image))
		case s.IsImage():
			key = "image " + s.Image + "@" + s.Digest
		case s.Project == "" || s.Commit == "":
			problems = append(problems, fmt.Sprintf("scans[%d] names neither a project and a commit nor an image and a digest", i))
		default:
			key = "project " + s.Project + "@" + s.Commit
		}
		if s.Result == nil {
			problems = append(problems, fmt.Sprintf("scans[%d] (%s) has no result", i, s.Name()))
		}
		if key != "" && seen[key] {
			problems = append(problems, fmt.Sprintf("scans[%d]: %s is in the release twice", i, key))
		}
		seen[key] = true
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: release %s %s: %s", scanner.ErrUsage, r.ProductID, r.Version, strings.Join(problems, "; "))
	}
	return nil
}

// Validate checks that the recipient can be named on every page: a tenant
// name and a ticket. Its errors wrap scanner.ErrUsage.
func (p *Recipient) Validate() error {
	if strings.TrimSpace(p.TenantName) == "" || strings.TrimSpace(p.Ticket) == "" {
		return fmt.Errorf("%w: a report's recipient needs a tenant name and a ticket (got %q, %q)", scanner.ErrUsage, p.TenantName, p.Ticket)
	}
	return nil
}
