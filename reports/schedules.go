package reports

// Scheduled releases: a product with a report schedule (cron) gets a
// release cut on it, made of the default branches of its production
// projects at their newest succeeded scans and of the image digests
// first scanned in the last N days for those projects or in the image
// repositories the schedule names. Its version is named from the
// schedule's tick ("scheduled-2026-12-03T0600Z"), so a retried or
// repeated run of one tick makes one release: the second is refused as a
// version made already (ErrConflict), which means done.
//
// The schedule is the reports domain's, kept in its own table keyed by
// the licensing product (report_schedules): licensing knows nothing of
// reports, and a product without a schedule has no row.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/robfig/cron/v3"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/httpx"
)

// Limits of a report schedule.
const (
	DefaultImageWindowDays = 30
	MaxImageWindowDays     = 365
	MaxImageRepositories   = 20
	maxScheduleSpec        = 200
	maxRepository          = 255
)

// ReportSchedule is when a product's releases are cut, and what images
// they take.
type ReportSchedule struct {
	ProductID string
	// Spec is a cron schedule (robfig/cron/v3 standard syntax, as the
	// projects' rescans: five fields, @daily, @weekly…, CRON_TZ=), ""
	// for none.
	Spec string
	// ImageWindowDays: a release takes the image digests first scanned
	// in this many days before its tick.
	ImageWindowDays int
	// ImageRepositories are image repositories ("registry.example.com/app",
	// in their full form) whose digests the releases take, beside those
	// scanned for the product's production projects.
	ImageRepositories []string
	UpdatedAt         time.Time
}

// ScheduleChange changes a product's report schedule; a nil field stays
// as it is ("" Spec removes the schedule).
type ScheduleChange struct {
	Spec              *string
	ImageWindowDays   *int
	ImageRepositories *[]string
}

// Empty reports whether the change changes nothing.
func (c ScheduleChange) Empty() bool {
	return c.Spec == nil && c.ImageWindowDays == nil && c.ImageRepositories == nil
}

// ScheduleStore is what the Scheduler needs of the database;
// internal/store implements it.
type ScheduleStore interface {
	// ReportSchedule returns the product's schedule, or ErrNotFound when
	// it has none.
	ReportSchedule(ctx context.Context, productID string) (ReportSchedule, error)
	// PutReportSchedule stores the product's schedule, replacing its
	// previous one; ErrNotFound for an unknown product.
	PutReportSchedule(ctx context.Context, s ReportSchedule) (ReportSchedule, error)
	// ListReportSchedules returns the schedules with a Spec.
	ListReportSchedules(ctx context.Context) ([]ReportSchedule, error)
	// ReleaseImageScans returns the first scans of image digests recorded
	// in [since, until] for one of the projects (by ID) or whose
	// reference is in one of the repositories (full names; "repo",
	// "repo:tag" and "repo@digest" match), newest first, at most
	// ci.MaxScanLimit.
	ReleaseImageScans(ctx context.Context, projectIDs, repositories []string, since, until time.Time) ([]ci.Scan, error)
}

// PeriodicQueue runs the schedules: the job queue's periodic jobs (the
// server's adapter of internal/jobs, as for the projects' rescans).
type PeriodicQueue interface {
	// AddPeriodic adds, or replaces, the periodic job name on the cron
	// schedule; RemovePeriodic removes it.
	AddPeriodic(name, schedule string) error
	RemovePeriodic(name string)
}

// SchedulerConfig configures a Scheduler. Every field but Logger and Now
// is required.
type SchedulerConfig struct {
	Store    ScheduleStore
	Releases *Service
	Queue    PeriodicQueue
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Scheduler keeps the products' report schedules, registers their
// periodic jobs, and cuts their releases. It is safe for concurrent use.
type Scheduler struct {
	store    ScheduleStore
	releases *Service
	queue    PeriodicQueue
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	specs map[string]string // periodic job -> the spec this process registered
}

// NewScheduler makes a Scheduler.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("reports: SchedulerConfig.Store is required")
	case cfg.Releases == nil:
		return nil, errors.New("reports: SchedulerConfig.Releases is required")
	case cfg.Queue == nil:
		return nil, errors.New("reports: SchedulerConfig.Queue is required")
	}
	s := &Scheduler{store: cfg.Store, releases: cfg.Releases, queue: cfg.Queue, log: cfg.Logger, now: cfg.Now, specs: map[string]string{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// schedulePrefix starts the names of the schedules' periodic jobs.
const schedulePrefix = "report:"

// ScheduleJob names the periodic job of a product's report schedule.
func ScheduleJob(productID string) string { return schedulePrefix + productID }

// IsScheduleJob reports whether a periodic job is a report schedule's.
func IsScheduleJob(name string) bool { return strings.HasPrefix(name, schedulePrefix) }

// ScheduleError refuses a report schedule that does not parse, or that
// never fires; it names the spec. It is an ErrInvalid.
type ScheduleError struct {
	Spec string
	Why  string
}

func (e *ScheduleError) Error() string {
	return fmt.Sprintf("report_schedule %q: %s (want cron syntax: five fields minute hour day-of-month month day-of-week, "+
		"like \"0 6 * * 1\", or @daily, @weekly, @monthly, optionally after CRON_TZ=Europe/Paris)", e.Spec, e.Why)
}

// Is makes a ScheduleError an ErrInvalid.
func (e *ScheduleError) Is(target error) bool { return target == ErrInvalid }

// ParseSchedule reads a report schedule: robfig/cron/v3 standard syntax.
// "@every D" is refused: a release is named after its schedule's tick,
// which an interval without an origin does not have. So is a spec that
// never fires (February 30th).
func ParseSchedule(spec string) (cron.Schedule, error) {
	if err := checkSpecText(spec); err != nil {
		return nil, err
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, &ScheduleError{Spec: spec, Why: err.Error()}
	}
	if _, ok := sched.(cron.ConstantDelaySchedule); ok {
		return nil, &ScheduleError{Spec: spec, Why: "@every has no fixed times to name releases after; give times of day"}
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, &ScheduleError{Spec: spec, Why: "it never fires"}
	}
	return sched, nil
}

// checkSpecText refuses a spec that is too long, or holds control or
// invisible characters (a line break among them).
func checkSpecText(spec string) error {
	if len(spec) > maxScheduleSpec {
		return &ScheduleError{Spec: spec[:maxScheduleSpec] + "…", Why: fmt.Sprintf("at most %d bytes", maxScheduleSpec)}
	}
	if err := httpx.CheckIdentifier("report_schedule", spec, maxScheduleSpec); err != nil {
		return &ScheduleError{Spec: spec, Why: "control and invisible characters are not allowed"}
	}
	return nil
}

// Tick is the last time the schedule fired at or before t: the tick a
// run enqueued at t stands for.
func Tick(sched cron.Schedule, t time.Time) (time.Time, error) {
	// Ticks are found going forward (Next), from ever further back: the
	// first window that holds one holds few.
	for back := 2 * time.Minute; back <= 6*366*24*time.Hour; back *= 2 {
		var last time.Time
		for n, i := sched.Next(t.Add(-back)), 0; !n.IsZero() && !n.After(t) && i < 100000; n, i = sched.Next(n), i+1 {
			last = n
		}
		if !last.IsZero() {
			return last, nil
		}
	}
	return time.Time{}, errors.New("the schedule has not fired in six years")
}

// tickSlack is how long before its tick a periodic job may be enqueued
// (River's margin, clocks of database and process apart) and still stand
// for that tick; ticks are a minute apart at least.
const tickSlack = 30 * time.Second

// ScheduledVersion is the version of the release cut at a tick:
// "scheduled-2026-12-03T0600Z" (UTC, to the minute).
func ScheduledVersion(tick time.Time) string {
	return "scheduled-" + tick.UTC().Format("2006-01-02T1504Z")
}

// normalizeRepositories checks image repositories and writes them in
// their full form ("alpine" is "index.docker.io/library/alpine"), sorted,
// once each.
func normalizeRepositories(repos []string) ([]string, error) {
	if len(repos) > MaxImageRepositories {
		return nil, fmt.Errorf("%w: report_image_repositories: at most %d", ErrInvalid, MaxImageRepositories)
	}
	out := make([]string, 0, len(repos))
	for _, r := range repos {
		if err := httpx.CheckIdentifier("report_image_repositories", r, maxRepository); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		r = strings.TrimSpace(r)
		repo, err := name.NewRepository(r)
		if err != nil {
			return nil, fmt.Errorf("%w: report_image_repositories: %q is not an image repository (registry.example.com/team/app, without tag or digest)", ErrInvalid, r)
		}
		out = append(out, repo.Name())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// apply returns the schedule with the change applied and checked.
func (c ScheduleChange) apply(s ReportSchedule) (ReportSchedule, error) {
	if c.Spec != nil {
		if err := checkSpecText(*c.Spec); err != nil {
			return ReportSchedule{}, err
		}
		s.Spec = strings.TrimSpace(*c.Spec)
		if s.Spec != "" {
			if _, err := ParseSchedule(s.Spec); err != nil {
				return ReportSchedule{}, err
			}
		}
	}
	if c.ImageWindowDays != nil {
		if n := *c.ImageWindowDays; n < 1 || n > MaxImageWindowDays {
			return ReportSchedule{}, fmt.Errorf("%w: report_image_window_days %d: want 1 to %d", ErrInvalid, n, MaxImageWindowDays)
		}
		s.ImageWindowDays = *c.ImageWindowDays
	}
	if c.ImageRepositories != nil {
		repos, err := normalizeRepositories(*c.ImageRepositories)
		if err != nil {
			return ReportSchedule{}, err
		}
		s.ImageRepositories = repos
	}
	return s, nil
}

// Check checks the change on its own (what it sets is valid), before
// anything is stored.
func (c ScheduleChange) Check() error {
	_, err := c.apply(ReportSchedule{ImageWindowDays: DefaultImageWindowDays})
	return err
}

// Schedule returns the product's report schedule: with no Spec and the
// defaults when it has none. ErrNotFound for an unknown product.
func (s *Scheduler) Schedule(ctx context.Context, productID string) (ReportSchedule, error) {
	if err := s.releases.product(ctx, productID); err != nil {
		return ReportSchedule{}, err
	}
	return s.stored(ctx, productID)
}

func (s *Scheduler) stored(ctx context.Context, productID string) (ReportSchedule, error) {
	rs, err := s.store.ReportSchedule(ctx, productID)
	if errors.Is(err, ErrNotFound) {
		return ReportSchedule{ProductID: productID, ImageWindowDays: DefaultImageWindowDays}, nil
	}
	if err != nil {
		return ReportSchedule{}, fmt.Errorf("reports: report schedule of %s: %w", productID, err)
	}
	return rs, nil
}

// SetSchedule changes the product's report schedule and, in this
// process, its periodic job: a new spec replaces it, "" removes it.
// Other processes pick the change up when the job next runs there, or
// at their next start. Errors wrap ErrInvalid for a bad change (a
// *ScheduleError names a spec that does not parse), ErrNotFound for an
// unknown product.
func (s *Scheduler) SetSchedule(ctx context.Context, productID string, c ScheduleChange) (ReportSchedule, error) {
	if err := c.Check(); err != nil {
		return ReportSchedule{}, err
	}
	cur, err := s.Schedule(ctx, productID)
	if err != nil {
		return ReportSchedule{}, err
	}
	next, err := c.apply(cur)
	if err != nil {
		return ReportSchedule{}, err
	}
	next.ProductID, next.UpdatedAt = productID, s.now().UTC()
	if next, err = s.store.PutReportSchedule(ctx, next); err != nil {
		return ReportSchedule{}, fmt.Errorf("reports: report schedule of %s: %w", productID, err)
	}
	if err := s.register(next); err != nil {
		s.log.ErrorContext(ctx, "report schedule stored, but not registered; it will be at the next start",
			slog.String("product", productID), slog.Any("error", err))
	}
	s.log.InfoContext(ctx, "report schedule set", slog.String("product", productID), slog.String("schedule", next.Spec),
		slog.Int("image_window_days", next.ImageWindowDays), slog.Any("image_repositories", next.ImageRepositories))
	return next, nil
}

// register adds (or replaces) the schedule's periodic job in this
// process, or removes it for a schedule without a Spec.
func (s *Scheduler) register(rs ReportSchedule) error {
	job := ScheduleJob(rs.ProductID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs.Spec == "" {
		s.queue.RemovePeriodic(job)
		delete(s.specs, job)
		return nil
	}
	if err := s.queue.AddPeriodic(job, rs.Spec); err != nil {
		return err
	}
	s.specs[job] = rs.Spec
	return nil
}

// ScheduleAll registers the periodic job of every product with a report
// schedule: a server does it as it starts. One that does not parse (it
// was checked when stored) is logged and skipped.
func (s *Scheduler) ScheduleAll(ctx context.Context) error {
	rss, err := s.store.ListReportSchedules(ctx)
	if err != nil {
		return fmt.Errorf("reports: report schedules: %w", err)
	}
	for _, rs := range rss {
		if err := s.register(rs); err != nil {
			s.log.ErrorContext(ctx, "report schedule not registered", slog.String("product", rs.ProductID),
				slog.String("schedule", rs.Spec), slog.Any("error", err))
		}
	}
	return nil
}

// RunPeriodic runs the periodic job of a report schedule, enqueued at
// the time given (jobs.Enqueued): it cuts the release of the tick the
// job stands for. A schedule removed meanwhile removes the job in this
// process and does nothing; one changed meanwhile replaces it. An error
// asks for another attempt, which names the same release.
func (s *Scheduler) RunPeriodic(ctx context.Context, job string, enqueued time.Time) error {
	productID, ok := strings.CutPrefix(job, schedulePrefix)
	if !ok || productID == "" {
		return fmt.Errorf("reports: %q is not a report schedule's job", job)
	}
	rs, err := s.stored(ctx, productID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	registered := s.specs[job]
	s.mu.Unlock()
	if rs.Spec != registered {
		if err := s.register(rs); err != nil {
			s.log.ErrorContext(ctx, "report schedule not registered", slog.String("product", productID), slog.Any("error", err))
		}
	}
	if rs.Spec == "" {
		s.log.InfoContext(ctx, "report schedule removed; nothing cut", slog.String("product", productID))
		return nil
	}
	sched, err := ParseSchedule(rs.Spec)
	if err != nil {
		s.log.ErrorContext(ctx, "report schedule does not parse; nothing cut", slog.String("product", productID), slog.Any("error", err))
		return nil
	}
	if enqueued.IsZero() {
		enqueued = s.now()
	}
	tick, err := Tick(sched, enqueued.Add(tickSlack))
	if err != nil {
		s.log.ErrorContext(ctx, "report schedule: no tick; nothing cut", slog.String("product", productID), slog.Any("error", err))
		return nil
	}
	_, _, err = s.Cut(ctx, productID, tick)
	return err
}

// Cut cuts the release of the product's schedule at a tick: version
// ScheduledVersion(tick), made of the default branch of every production
// project at its newest succeeded scan, and of the image digests first
// scanned in the schedule's window before the tick for those projects or
// in its image repositories, each at its newest succeeded scan. A project
// or digest without a succeeded scan is left out (and logged). made is
// false, with no error, when the tick's release exists already or there
// is nothing to release.
func (s *Scheduler) Cut(ctx context.Context, productID string, tick time.Time) (r StoredRelease, made bool, err error) {
	log := s.log.With(slog.String("product", productID), slog.String("version", ScheduledVersion(tick)))
	rs, err := s.Schedule(ctx, productID)
	if err != nil {
		return StoredRelease{}, false, err
	}
	pipe := s.releases.ci
	ps, err := pipe.ProductProjects(ctx, productID)
	if err != nil {
		return StoredRelease{}, false, fmt.Errorf("reports: scheduled release of %s: %w", productID, err)
	}
	var (
		projects, ids []string
		skipped       []string
	)
	for _, p := range ps {
		if !p.Production {
			continue
		}
		ids = append(ids, p.ID)
		sc, err := pipe.DefaultBranchScan(ctx, p.Project)
		switch {
		case errors.Is(err, ci.ErrNotFound):
			skipped = append(skipped, p.Name+" (no succeeded scan of "+p.DefaultBranch+")")
		case err != nil:
			return StoredRelease{}, false, fmt.Errorf("reports: scheduled release of %s: %w", productID, err)
		default:
			projects = append(projects, p.Name+"@"+sc.CommitSHA)
		}
	}
	since := tick.AddDate(0, 0, -rs.ImageWindowDays)
	scans, err := s.store.ReleaseImageScans(ctx, ids, rs.ImageRepositories, since, tick)
	if err != nil {
		return StoredRelease{}, false, fmt.Errorf("reports: scheduled release of %s: %w", productID, err)
	}
	var images []string
	for _, first := range scans {
		if first.ImageRef == "" {
			continue // a digest without a reference names no release item
		}
		target := strings.SplitN(first.ImageRef, "@", 2)[0] + "@" + first.ImageDigest
		sc, err := pipe.TargetScan(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: first.ImageDigest})
		switch {
		case err != nil && !errors.Is(err, ci.ErrNotFound):
			return StoredRelease{}, false, fmt.Errorf("reports: scheduled release of %s: %w", productID, err)
		case err != nil || sc.Status != ci.ScanSucceeded:
			skipped = append(skipped, target+" (no succeeded scan)")
		default:
			images = append(images, target)
		}
	}
	slices.Sort(images)
	if len(skipped) > 0 {
		log.WarnContext(ctx, "scheduled release: left out what has no succeeded scan", slog.Any("skipped", skipped))
	}
	if len(projects) == 0 && len(images) == 0 {
		log.InfoContext(ctx, "scheduled release: nothing to release; skipped")
		return StoredRelease{}, false, nil
	}
	r, err = s.releases.CreateRelease(ctx, NewRelease{ProductID: productID, Version: ScheduledVersion(tick), Projects: projects, Images: images})
	switch {
	case errors.Is(err, ErrConflict):
		log.InfoContext(ctx, "scheduled release: cut already")
		return StoredRelease{}, false, nil
	case err != nil:
		return StoredRelease{}, false, err
	}
	return r, true, nil
}
