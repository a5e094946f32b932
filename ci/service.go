package ci

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// Store is what the Service needs of the database: the pipeline's records
// and their transitions. internal/store implements it. Its errors satisfy
// errors.Is with ErrNotFound, ErrConflict and ErrInvalid.
type Store interface {
	ProjectStore

	GetProject(ctx context.Context, id string) (Project, error)
	GetProjectByName(ctx context.Context, name string) (Project, error)
	ListProjects(ctx context.Context) ([]Project, error)
	GetPolicy(ctx context.Context, projectID string, version int) (PolicyVersion, error)
	GetForge(ctx context.Context, projectID string) (Forge, error)
	ListWaivers(ctx context.Context, projectID string) ([]ProjectWaiver, error)

	EnqueueScan(ctx context.Context, n NewScan) (scan Scan, created bool, err error)
	EnqueueRescan(ctx context.Context, of Scan) (scan Scan, created bool, err error)
	GetScan(ctx context.Context, id string) (Scan, error)
	FindCommitScan(ctx context.Context, projectID, commit string) (Scan, error)
	// ScannedCommits returns up to limit distinct commits of the project
	// that were scanned and whose SHA starts with prefix (lower-case hex).
	ScannedCommits(ctx context.Context, projectID, prefix string, limit int) ([]string, error)
	FindImageScan(ctx context.Context, digest string) (Scan, error)
	// SucceededScan is the newest succeeded scan, first scan or rescan,
	// of the commit or image digest n names, or ErrNotFound.
	SucceededScan(ctx context.Context, n NewScan) (Scan, error)
	// LatestBranchScan is the newest succeeded scan of the project
	// recorded for the branch, other than of commit exceptCommit, or
	// ErrNotFound.
	LatestBranchScan(ctx context.Context, projectID, branch, exceptCommit string) (Scan, error)
	RecentImageScans(ctx context.Context, projectID string, since time.Time) ([]Scan, error)
	MarkRunning(ctx context.Context, id string) (Scan, error)
	RecordScanBranch(ctx context.Context, id, branch string) error
	MarkSucceeded(ctx context.Context, id string, res ScanResult) (Scan, error)
	MarkFailed(ctx context.Context, id, reason string) (Scan, error)
	RecordFindings(ctx context.Context, scanID string, found []ObservedFinding) error

	GateState(ctx context.Context, scanID string) (GateState, error)
	CommitScanGate(ctx context.Context, projectName, commit string) (ScanGate, error)
	ImageScanGate(ctx context.Context, digest string) (ScanGate, error)
	PutGateSummary(ctx context.Context, scanID string, summary []byte) error
	GetGateSummary(ctx context.Context, scanID string) ([]byte, error)
}

// ScanCache is the cache the workers' scans share: engine outputs by
// (engine, version, configuration, content), and engines' partial
// results, some of which are replaced (internal/store.ScanCache).
type ScanCache interface {
	scanner.Cache
	scanner.Replacer
}

// Blobs keeps the reports of scans, content-addressed.
type Blobs interface {
	Put(ctx context.Context, r io.Reader) (key string, size int64, err error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Size(ctx context.Context, key string) (int64, error)
}

// Queue runs the Service's work in the background: scan jobs, commit
// status jobs and the projects' periodic rescans. A job runner calls
// Service.RunScan, PostCommitStatus or RunPeriodic with the attempt in
// its context (WithAttempt), and treats an error for which IsPermanent
// holds as final.
type Queue interface {
	InsertScan(ctx context.Context, scanID string) (inserted bool, err error)
	InsertStatus(ctx context.Context, scanID, event string) (inserted bool, err error)
	// AddPeriodic adds, or replaces, the job name that runs on the cron
	// schedule; RemovePeriodic removes it.
	AddPeriodic(name, schedule string) error
	RemovePeriodic(name string)
}

// The events of a scan that queue a commit status (Queue.InsertStatus).
const (
	StatusStarted  = "started"
	StatusFinished = "finished"
)

// Metrics receives what the Service counts.
type Metrics interface {
	// EngineSeconds is the wall time of one engine's part of a scan.
	EngineSeconds(engine string, seconds float64)
	// Rescan counts a succeeded rescan by kind and outcome
	// ("new_findings", "unchanged").
	Rescan(kind ScanKind, outcome string)
}

// The Service's errors. The store's errors satisfy errors.Is with these.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid input")
)

// Config configures a Service. Store, Blobs, Queue and Sealer are
// required.
type Config struct {
	Store  Store
	Blobs  Blobs
	Queue  Queue
	Sealer *Sealer
	// Cache is the cache the workers' scans share (engine outputs by
	// content); nil caches nothing.
	Cache ScanCache
	// Engines is the engine table the workers run.
	Engines []scanner.Engine
	// Git confines the git commands that reach repositories; nil means
	// no restriction (tests).
	Git *source.Policy
	// Registries says how images are pulled and tags resolved.
	Registries Registries
	// ForgeClient posts commit statuses.
	ForgeClient *http.Client
	// PublicURL is the base of the links to scans in commit statuses.
	PublicURL string
	// RescanDays is how far back a project's scheduled rescan looks for
	// image digests to scan again (DefaultRescanDays when 0).
	RescanDays int
	// ScanDelay makes every scan attempt wait that long once marked
	// running: tests only (to stop a process in the middle of a scan).
	ScanDelay time.Duration
	Metrics   Metrics // nil counts nothing
	Logger    *slog.Logger
}

// Registries says how the Service reaches container registries.
type Registries struct {
	// Insecure are registry hosts (host[:port]) reached over plain HTTP.
	Insecure []string
	// Transport carries registry requests; nil means the default.
	Transport http.RoundTripper
}

// DefaultRescanDays is the default of Config.RescanDays.
const DefaultRescanDays = 30

// Service is the pipeline: it enqueues scans and runs them, records what
// they found (gate summaries, tracked findings), decides gates, posts
// commit statuses and schedules rescans. The HTTP API, the webhooks, the
// admission webhook and the job queue call it.
type Service struct {
	store       Store
	blobs       Blobs
	queue       Queue
	seal        *Sealer
	cache       ScanCache
	engines     []scanner.Engine
	git         *source.Policy
	registries  Registries
	forgeClient *http.Client
	publicURL   string
	rescanDays  int
	scanDelay   time.Duration
	metrics     Metrics
	log         *slog.Logger
	gates       *gateCache
}

// New makes a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("ci: Config.Store is required")
	case cfg.Blobs == nil:
		return nil, errors.New("ci: Config.Blobs is required")
	case cfg.Queue == nil:
		return nil, errors.New("ci: Config.Queue is required")
	case cfg.Sealer == nil:
		return nil, errors.New("ci: Config.Sealer is required")
	}
	s := &Service{
		store: cfg.Store, blobs: cfg.Blobs, queue: cfg.Queue, seal: cfg.Sealer, cache: cfg.Cache,
		engines: cfg.Engines, git: cfg.Git, registries: cfg.Registries, forgeClient: cfg.ForgeClient,
		publicURL: cfg.PublicURL, rescanDays: cfg.RescanDays, scanDelay: cfg.ScanDelay,
		metrics: cfg.Metrics, log: cfg.Logger, gates: newGateCache(),
	}
	if s.rescanDays <= 0 {
		s.rescanDays = DefaultRescanDays
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.forgeClient == nil {
		s.forgeClient = &http.Client{Timeout: 30 * time.Second}
	}
	return s, nil
}

type noMetrics struct{}

func (noMetrics) EngineSeconds(string, float64) {}
func (noMetrics) Rescan(ScanKind, string)       {}

// Sealer is the sealer of the projects' secrets (webhook secrets, forge
// tokens): servers that create projects seal with it.
func (s *Service) Sealer() *Sealer { return s.seal }

// Project finds a project by name, or by ID.
func (s *Service) Project(ctx context.Context, ref string) (Project, error) {
	p, err := s.store.GetProjectByName(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		if p2, err2 := s.store.GetProject(ctx, ref); err2 == nil {
			return p2, nil
		}
	}
	return p, err
}

// Enqueue records the scan and, while it is queued, makes sure it has a
// job (inserting is idempotent per scan). created says whether this call
// made the scan. A commit's branch is not the caller's to say: the
// worker records it.
func (s *Service) Enqueue(ctx context.Context, n NewScan) (sc Scan, created bool, err error) {
	sc, created, err = s.store.EnqueueScan(ctx, n)
	if err != nil {
		return Scan{}, false, err
	}
	if sc.Status == ScanQueued {
		if _, err := s.queue.InsertScan(ctx, sc.ID); err != nil {
			return Scan{}, false, err
		}
	}
	return sc, created, nil
}

// attemptKey carries the job's attempt in a runner's context.
type attemptKey struct{}

// WithAttempt tells the Service which attempt of how many a job runner is
// making: a scan's last attempt records its failure.
func WithAttempt(ctx context.Context, attempt, maxAttempts int) context.Context {
	return context.WithValue(ctx, attemptKey{}, [2]int{attempt, maxAttempts})
}

// Attempt is the attempt WithAttempt put in ctx (0, 0 outside a job).
func Attempt(ctx context.Context) (attempt, maxAttempts int) {
	a, _ := ctx.Value(attemptKey{}).([2]int)
	return a[0], a[1]
}

// permanentError marks an error after which a job must not run again.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether a job runner's error is final: retrying
// cannot help (bad input, a deleted scan, a forge that refused).
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// now is the gate's clock.
func now() time.Time { return time.Now() }
