package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/vigil-sec/vigil/internal/strictjson"
	"github.com/vigil-sec/vigil/reports"
)

// The type URIs of the layers.
const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// StatementType is the statement's _type: in-toto Statement v1.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is the predicate type of Vigil's audit reports
	// (AuditReport), described in docs/audit-report-predicate.md.
	PredicateType = "https://vigil.dev/attestation/audit-report/v1"
)

// ErrMalformed is an envelope or a statement that does not have the shape
// this package reads: not JSON, not base64, a wrong type, a bad digest.
var ErrMalformed = errors.New("malformed attestation")

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is one artifact the statement is about: an in-toto
// ResourceDescriptor with a name and a SHA-256 digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
	// Annotations holds the artifact's size, so that a verifier can refuse
	// an artifact of another size before reading it.
	Annotations *Annotations `json:"annotations,omitempty"`
}

// Annotations are what Vigil records about a subject besides its digest.
type Annotations struct {
	Size int64 `json:"size"`
}

// SHA256 is the subject's SHA-256 digest in lower-case hex, "" if it has
// none.
func (s Subject) SHA256() string { return s.Digest["sha256"] }

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// NewStatement makes a statement of the subjects about predicate, which is
// encoded as JSON under predicateType.
func NewStatement(subjects []Subject, predicateType string, predicate any) (*Statement, error) {
	p, err := json.Marshal(predicate)
	if err != nil {
		return nil, fmt.Errorf("attest: encoding the predicate: %w", err)
	}
	st := &Statement{Type: StatementType, Subject: subjects, PredicateType: predicateType, Predicate: p}
	if err := st.check(); err != nil {
		return nil, err
	}
	return st, nil
}

// parseStatement reads a statement, refusing duplicate and case-folded
// keys so that every reader of the same payload sees the same statement.
func parseStatement(body []byte) (*Statement, error) {
	var st Statement
	if err := strictjson.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("%w: the payload is not an in-toto statement: %v", ErrMalformed, err)
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	return &st, nil
}

func (st *Statement) check() error {
	if st.Type != StatementType {
		return fmt.Errorf("%w: statement type %q, want %q", ErrMalformed, st.Type, StatementType)
	}
	if st.PredicateType == "" {
		return fmt.Errorf("%w: the statement has no predicate type", ErrMalformed)
	}
	if len(st.Subject) == 0 {
		return fmt.Errorf("%w: the statement has no subject", ErrMalformed)
	}
	for i, s := range st.Subject {
		if !sha256Hex.MatchString(s.SHA256()) {
			return fmt.Errorf("%w: subject %d (%q) has no lower-case hex SHA-256 digest", ErrMalformed, i, s.Name)
		}
		if s.Annotations != nil && s.Annotations.Size < 0 {
			return fmt.Errorf("%w: subject %q has a negative size", ErrMalformed, s.Name)
		}
	}
	return nil
}

// AuditReport decodes the predicate, which must be of PredicateType.
func (st *Statement) AuditReport() (*AuditReport, error) {
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("%w: predicate type %q, want %q", ErrMalformed, st.PredicateType, PredicateType)
	}
	var r AuditReport
	if err := strictjson.Unmarshal(st.Predicate, &r); err != nil {
		return nil, fmt.Errorf("%w: the predicate is not an audit report: %v", ErrMalformed, err)
	}
	return &r, nil
}

// AuditReport is the predicate of an audit report bundle
// (PredicateType): what was scanned, for whom, and who signed. Times are
// RFC 3339 in UTC.
type AuditReport struct {
	Release   Release   `json:"release"`
	Recipient Recipient `json:"recipient"`
	// Ticket is the support ticket the bundle answers, "" when none.
	Ticket string `json:"ticket,omitempty"`
	// Scans are every scan the release is made of.
	Scans []Scan `json:"scans"`
	// SigningKeyID is the ID (RFC 7638 thumbprint) of the key that signs
	// the envelope; a verifier checks that the signature is by this key.
	SigningKeyID string `json:"signing_key_id"`
}

// Release names what the report covers: a version of a licensing product.
type Release struct {
	Product     string    `json:"product"` // the licensing product's ID
	ProductName string    `json:"product_name,omitempty"`
	Version     string    `json:"version"`
	ReleasedAt  time.Time `json:"released_at"`
}

// Recipient is the licensing tenant the bundle was built for.
type Recipient struct {
	Tenant string `json:"tenant"` // the tenant's ID
	Name   string `json:"name,omitempty"`
}

// The kinds of scan targets.
const (
	TargetCommit = "commit"
	TargetImage  = "image"
)

// Scan is one scan behind the report.
type Scan struct {
	ID            string    `json:"id,omitempty"`
	Target        Target    `json:"target"`
	Engines       []Engine  `json:"engines"`
	PolicyVersion string    `json:"policy_version,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
}

// Target is what a scan looked at: a commit of a project's repository
// (Kind TargetCommit, Commit set) or a container image (Kind TargetImage,
// Digest set).
type Target struct {
	Kind       string `json:"kind"`
	Project    string `json:"project,omitempty"`
	Repository string `json:"repository,omitempty"` // the git remote
	Commit     string `json:"commit,omitempty"`
	Image      string `json:"image,omitempty"`  // the image reference as named
	Digest     string `json:"digest,omitempty"` // the image's digest, "sha256:…"
}

// Engine is a scan engine and the version that ran.
type Engine struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// Validate reports the first thing a report lacks: a product, a version,
// a recipient, and for every scan a target with its commit or digest.
func (r *AuditReport) Validate() error {
	switch {
	case r.Release.Product == "":
		return errors.New("attest: the report names no product")
	case r.Release.Version == "":
		return errors.New("attest: the report names no version")
	case r.Recipient.Tenant == "":
		return errors.New("attest: the report names no recipient tenant")
	}
	for i, s := range r.Scans {
		t := s.Target
		switch {
		case t.Kind == TargetCommit && t.Commit == "":
			return fmt.Errorf("attest: scan %d of a commit names no commit", i)
		case t.Kind == TargetImage && t.Digest == "":
			return fmt.Errorf("attest: scan %d of an image names no digest", i)
		case t.Kind != TargetCommit && t.Kind != TargetImage:
			return fmt.Errorf("attest: scan %d has target kind %q, want %q or %q", i, t.Kind, TargetCommit, TargetImage)
		}
	}
	return nil
}

// UTC returns a copy of the report with every time in UTC, so that the
// same report always encodes to the same bytes.
func (r AuditReport) UTC() AuditReport {
	r.Release.ReleasedAt = r.Release.ReleasedAt.UTC()
	scans := make([]Scan, len(r.Scans))
	for i, s := range r.Scans {
		s.StartedAt, s.FinishedAt = s.StartedAt.UTC(), s.FinishedAt.UTC()
		s.Engines = append(make([]Engine, 0, len(s.Engines)), s.Engines...)
		scans[i] = s
	}
	r.Scans = scans
	return r
}

// NewAuditReport is the predicate of a bundle of the release for the
// recipient: its scans in the order every document lists them, each with
// its engines and times from its result. SigningKeyID is left for the
// signer (bundle.Build sets it).
func NewAuditReport(rel *reports.Release, to reports.Recipient) *AuditReport {
	r := &AuditReport{
		Release:   Release{Product: rel.ProductID, ProductName: rel.ProductName, Version: rel.Version, ReleasedAt: rel.Created},
		Recipient: Recipient{Tenant: to.TenantID, Name: to.TenantName},
		Ticket:    to.Ticket,
		Scans:     []Scan{},
	}
	for _, s := range rel.SortedScans() {
		scan := Scan{PolicyVersion: s.PolicyVersion, Engines: []Engine{}}
		if s.IsImage() {
			scan.Target = Target{Kind: TargetImage, Image: s.Image, Digest: s.Digest}
		} else {
			scan.Target = Target{Kind: TargetCommit, Project: s.Project, Repository: s.Repository, Commit: s.Commit}
		}
		if res := s.Result; res != nil {
			scan.StartedAt, scan.FinishedAt = res.StartedAt, res.FinishedAt
			for _, e := range res.Engines {
				scan.Engines = append(scan.Engines, Engine{ID: e.ID, Version: e.Version})
			}
		}
		r.Scans = append(r.Scans, scan)
	}
	return r
}
