package ci

import "time"

// The pipeline's records: projects and their policies, scans and their
// lifecycle, tracked findings, waivers made through the API and what a
// gate decision depends on. The Service works on them; a Store keeps them
// (internal/store implements it).

// Project is a repository Vigil scans.
type Project struct {
	ID            string
	Name          string // unique
	RepoURL       string
	DefaultBranch string
	// WebhookSecret is stored as given. Verifying an HMAC signature needs
	// the secret itself (a hash of it cannot verify one), so callers seal
	// it with a server key before storing it.
	WebhookSecret string
	Schedule      string // a cron spec, or "" for no scheduled rescans
	// Production marks a project whose default branch goes into the
	// releases of the products it ships in when a release names no
	// project (see ProjectSummary.Products).
	Production bool
	CreatedAt  time.Time

	// PreviousWebhookSecret is the secret a rotation replaced (stored as
	// given, like WebhookSecret), still accepted until
	// PreviousSecretUntil; "" for none. See RotateWebhookSecret.
	PreviousWebhookSecret string
	PreviousSecretUntil   time.Time
}

// NewProject is a project with what CreateProjectWith stores with it.
type NewProject struct {
	// Project: ID is made when empty (a caller that seals data to the
	// project's ID before it exists sets a new UUID); CreatedAt is set.
	Project Project
	// ForgeURL and ForgeToken, when ForgeURL is set, are the project's
	// forge (see SetForge).
	ForgeURL, ForgeToken string
	// Policy, when not empty, is the first version of its policy.
	Policy string
}

// CreatedProject is what CreateProjectWith stored.
type CreatedProject struct {
	Project       Project
	PolicyVersion int // 0 without a policy
}

// PolicyVersion is one version of a project's gate policy.
type PolicyVersion struct {
	ProjectID string
	Version   int // 1, 2, … per project
	Body      string
	CreatedAt time.Time
}

// ProjectSummary is a project as lists show it: with the version of its
// latest policy (0 for none), its forge's API URL ("" for none) and the
// licensing products it ships in.
type ProjectSummary struct {
	Project
	PolicyVersion int
	ForgeURL      string
	// Products are the IDs of the licensing products the project ships
	// in, sorted; empty (not nil) for none.
	Products []string
}

// ProjectUpdate changes some of a project's settings; a nil field is left
// as it is. The name is not changed (it keys the webhook URLs, and the
// server seals the webhook secret to it).
type ProjectUpdate struct {
	RepoURL, DefaultBranch, Schedule *string
	// ForgeURL and ForgeToken, when ForgeURL is not nil, replace the
	// project's forge (or give it one); RemoveForge deletes it.
	ForgeURL, ForgeToken *string
	RemoveForge          bool
	// Products, when not nil, replaces the licensing products the project
	// ships in (an empty slice removes them all). An ID that names no
	// product is ErrInvalid, naming it, and nothing is changed.
	Products *[]string
	// Production, when not nil, sets Project.Production.
	Production *bool
	// Check, when not nil, is called in the transaction with the project
	// as it will be; an error it returns is returned and nothing is
	// changed. It checks what depends on several fields (a forge needs a
	// repo_url it can read an owner and a repository from).
	Check func(ProjectSummary) error
}

// Forge is where a project's commit statuses go (migration 0007).
type Forge struct {
	ProjectID string
	// APIURL is the base of the forge's API (https://api.github.com, a
	// GitHub Enterprise or Gitea API base).
	APIURL string
	// Token is stored as given: posting a status needs the token itself,
	// so callers seal it with a server key before storing it.
	Token     string
	CreatedAt time.Time
}

// ScanKind says what a scan looks at.
type ScanKind string

// The kinds of scan.
const (
	KindCommit ScanKind = "commit" // a commit of a project's repository
	KindImage  ScanKind = "image"  // a container image, by digest
)

// ScanStatus is where a scan is in its life.
//
//	queued ──> running ──> succeeded
//	   │          │ ▲
//	   └──────────┴─┼──> failed
//	                └──────┘ (retry)
//
// A running scan may be marked running again (a retry after a crash); a
// failed scan may be retried; a succeeded scan is final.
type ScanStatus string

// The statuses of a scan.
const (
	ScanQueued    ScanStatus = "queued"
	ScanRunning   ScanStatus = "running"
	ScanSucceeded ScanStatus = "succeeded"
	ScanFailed    ScanStatus = "failed"
)

// Scan is one scan of a commit or an image digest. There is at most one
// first scan per (project, commit) and one per image digest; scheduled
// rescans of them are scans of their own (see EnqueueRescan).
type Scan struct {
	ID          string
	ProjectID   string // "" for an image scan outside any project
	Kind        ScanKind
	CommitSHA   string // KindCommit only
	ImageDigest string // KindImage only, "sha256:…"
	ImageRef    string // KindImage only, the reference the digest was resolved from
	Status      ScanStatus
	Error       string // why the scan failed; shown to API users
	Attempts    int    // how many times the scan was marked running
	// EngineVersions maps an engine ID to the version that ran.
	EngineVersions map[string]string
	// Timings maps a phase (an engine ID, "checkout", "pull") to its
	// duration.
	Timings   map[string]time.Duration
	ResultKey string // the blob key of the stored result, once succeeded
	// Branch is the branch a commit scan was pushed to or asked for, ""
	// when unknown (SetScanBranch sets it once).
	Branch string
	// RescanOf is the first scan that a scheduled rescan runs again, ""
	// for a first scan.
	RescanOf string
	// Times are UTC; StartedAt and FinishedAt are zero until set.
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// NewScan names what to scan.
type NewScan struct {
	Kind        ScanKind
	ProjectID   string // required for KindCommit, optional for KindImage
	CommitSHA   string // KindCommit: the full SHA-1 or SHA-256 commit ID
	ImageDigest string // KindImage: "sha256:<64 hex>" or "sha512:<128 hex>"
	ImageRef    string // KindImage: optional, the reference it came from
}

// Page sizes of ListScans.
const (
	DefaultScanLimit = 50
	MaxScanLimit     = 500
)

// ScanFilter selects a page of scans. Zero fields select everything.
type ScanFilter struct {
	ProjectID string
	Status    ScanStatus
	Limit     int    // 0 means DefaultScanLimit; capped at MaxScanLimit
	Cursor    string // from the previous page's next cursor; "" for the first page
}

// ScanResult is what a successful scan leaves behind.
type ScanResult struct {
	ResultKey      string // blob key of the stored result
	EngineVersions map[string]string
	Timings        map[string]time.Duration
}

// Sighting is a scan in which a finding was seen, or fixed.
type Sighting struct {
	ScanID string
	Commit string
	At     time.Time // when the scan was created
}

// ObservedFinding is a finding as one scan saw it.
type ObservedFinding struct {
	Fingerprint string
	RuleID      string
	Severity    string
	Confidence  string
	File        string
	Line        int
	Message     string
	Suppressed  bool // a comment in the source (#nosec) suppresses it
}

// TrackedFinding is a finding of a project across its scans. Its details
// (rule, file, line, message) are as the latest scan that saw it has them.
type TrackedFinding struct {
	ID        string
	ProjectID string
	ObservedFinding
	First Sighting
	Last  Sighting
	Fixed *Sighting // nil while the finding is open
}

// Page sizes of ListFindings.
const (
	DefaultFindingLimit = 50
	MaxFindingLimit     = 500
)

// FindingFilter selects a page of a project's findings, newest first.
type FindingFilter struct {
	ProjectID string // required
	// Fixed selects fixed findings when true, unfixed ones when false;
	// nil selects both.
	Fixed  *bool
	Limit  int    // 0 means DefaultFindingLimit; capped at MaxFindingLimit
	Cursor string // from the previous page's next cursor; "" for the first page
}

// ProjectWaiver is a project's waiver made through the API. It suppresses the
// findings it matches (by rule, optionally narrowed to a path glob, or by
// fingerprint) through the end of its Expires day, UTC.
type ProjectWaiver struct {
	ID          string
	ProjectID   string
	Rule        string
	Path        string
	Fingerprint string
	Owner       string
	Reason      string
	Expires     time.Time // a date: midnight UTC of the last day it applies
	CreatedBy   string    // the API client that made it
	CreatedAt   time.Time
}

// GateState is what a gate decision of a scan depends on besides the scan
// itself and the current time: each field changes when its input does,
// so a decision cached under an equal GateState is still right.
type GateState struct {
	Branch string // the branch recorded for the scan, "" if none
	// PolicyVersion is the project's latest policy version, 0 for none.
	PolicyVersion int
	// WaiverVersion counts changes of the project's waivers, 0 for none.
	WaiverVersion int64
	// BaselineScanID is the newest succeeded scan (rescans included) of
	// another commit on the project's default branch, "" for none.
	BaselineScanID string
}

// ScanGate is what a gate query reads: the scan, its project and the
// state of the project the decision depends on. Project is zero for an
// image scan (read it by Scan.ProjectID when needed).
type ScanGate struct {
	Scan    Scan
	Project Project
	State   GateState
}
