package ci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Projects, their policies, waivers, tracked findings and scans, as the
// API, the CLI and the web app read and change them. The Service seals
// the secrets it is given in clear (webhook secrets, forge tokens) before
// they reach the store, and keeps the projects' rescan schedules in step
// with their settings.

// Limits of Page.Limit.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Page asks for one page of a list that grows at its end (oldest first):
// at most Limit items (0 means DefaultPageLimit; more than MaxPageLimit is
// ErrInvalid) after the item that Cursor, returned with the previous page,
// points at. The cursor is opaque to clients.
type Page struct {
	Cursor string
	Limit  int
}

// ProjectStore is what the Service needs of the store to manage projects,
// waivers and the lists the API pages through (a part of Store).
type ProjectStore interface {
	CreateProjectWith(ctx context.Context, n NewProject) (CreatedProject, error)
	GetProjectSummary(ctx context.Context, name string) (ProjectSummary, error)
	ListProjectPage(ctx context.Context, p Page) ([]ProjectSummary, string, error)
	// ListProductProjects lists the projects that ship in the licensing
	// product, by name.
	ListProductProjects(ctx context.Context, productID string) ([]ProjectSummary, error)
	UpdateProject(ctx context.Context, id string, u ProjectUpdate) (ProjectSummary, error)
	DeleteProject(ctx context.Context, id string) error
	RotateWebhookSecret(ctx context.Context, id, secret string, until time.Time) (Project, error)
	SetPolicy(ctx context.Context, projectID, body string) (pol PolicyVersion, created bool, err error)

	CreateWaiver(ctx context.Context, w ProjectWaiver) (ProjectWaiver, error)
	GetWaiver(ctx context.Context, id string) (ProjectWaiver, error)
	ListWaiverPage(ctx context.Context, projectID string, p Page) ([]ProjectWaiver, string, error)
	DeleteWaiver(ctx context.Context, id string) error

	ListFindings(ctx context.Context, f FindingFilter) (findings []TrackedFinding, next string, err error)
	// FindingCursor is the cursor of the page that follows the finding.
	FindingCursor(id string) string
	ListScans(ctx context.Context, f ScanFilter) (scans []Scan, next string, err error)
	ProjectNames(ctx context.Context, ids []string) (map[string]string, error)
}

// ProjectSpec is a new project as its creator gives it, secrets in clear.
type ProjectSpec struct {
	Name, RepoURL, DefaultBranch string
	// WebhookSecret verifies the project's push webhooks; "" for none.
	WebhookSecret string
	// Schedule is a cron spec of its rescans, "" for none.
	Schedule string
	// Policy, when not empty, is the first version of its policy.
	Policy string
	// ForgeURL and ForgeToken, when ForgeURL is set, are where its commit
	// statuses go.
	ForgeURL, ForgeToken string
}

// CreateProject stores a project with its forge and first policy in one
// transaction, the secrets sealed, and schedules its rescans. ErrConflict
// if the name is taken.
func (s *Service) CreateProject(ctx context.Context, spec ProjectSpec) (CreatedProject, error) {
	// The forge token is sealed to the project's ID, so the ID is made
	// here.
	id, err := uuid.NewV7()
	if err != nil {
		return CreatedProject{}, err
	}
	n := NewProject{
		Project: Project{
			ID: id.String(), Name: spec.Name, RepoURL: spec.RepoURL, DefaultBranch: spec.DefaultBranch,
			Schedule: spec.Schedule,
		},
		Policy: spec.Policy,
	}
	if spec.WebhookSecret != "" {
		n.Project.WebhookSecret = s.seal.Seal(spec.Name, spec.WebhookSecret)
	}
	if spec.ForgeURL != "" {
		n.ForgeURL, n.ForgeToken = spec.ForgeURL, s.seal.Seal(ForgeTokenAAD(n.Project.ID), spec.ForgeToken)
	}
	c, err := s.store.CreateProjectWith(ctx, n)
	if err != nil {
		return CreatedProject{}, err
	}
	if err := s.ScheduleRescan(c.Project); err != nil {
		s.log.ErrorContext(ctx, "project created, but its rescans were not scheduled; they will be at the next start",
			slog.String("project", c.Project.Name), slog.Any("error", err))
	}
	return c, nil
}

// ProjectSummary is the project with the name, with its policy version and
// forge.
func (s *Service) ProjectSummary(ctx context.Context, name string) (ProjectSummary, error) {
	return s.store.GetProjectSummary(ctx, name)
}

// ListProjects pages through the projects, oldest first, and returns the
// cursor of the next page ("" after the last).
func (s *Service) ListProjects(ctx context.Context, p Page) ([]ProjectSummary, string, error) {
	return s.store.ListProjectPage(ctx, p)
}

// ProductProjects lists the projects that ship in the licensing product
// (ProjectUpdate.Products), by name; none for an unknown product.
func (s *Service) ProductProjects(ctx context.Context, productID string) ([]ProjectSummary, error) {
	return s.store.ListProductProjects(ctx, productID)
}

// UpdateProject applies u to the project with the name in one
// transaction. u.ForgeToken is given in clear: it is sealed to the
// project here. A changed schedule reschedules its rescans.
func (s *Service) UpdateProject(ctx context.Context, name string, u ProjectUpdate) (ProjectSummary, error) {
	p, err := s.store.GetProjectByName(ctx, name)
	if err != nil {
		return ProjectSummary{}, err
	}
	if u.ForgeToken != nil {
		sealed := s.seal.Seal(ForgeTokenAAD(p.ID), *u.ForgeToken)
		u.ForgeToken = &sealed
	}
	after, err := s.store.UpdateProject(ctx, p.ID, u)
	if err != nil {
		return ProjectSummary{}, err
	}
	if u.Schedule != nil {
		if err := s.ScheduleRescan(after.Project); err != nil {
			s.log.ErrorContext(ctx, "project updated, but its rescans were not rescheduled; they will be at the next start",
				slog.String("project", p.Name), slog.Any("error", err))
		}
	}
	return after, nil
}

// DeleteProject deletes the project with the name and everything stored
// with it but its scans' blobs, and unschedules its rescans in this
// process (others drop theirs when it next fires). ErrConflict while a
// scan of it is queued or running.
func (s *Service) DeleteProject(ctx context.Context, name string) (Project, error) {
	p, err := s.store.GetProjectByName(ctx, name)
	if err != nil {
		return Project{}, err
	}
	if err := s.store.DeleteProject(ctx, p.ID); err != nil {
		return Project{}, err
	}
	unscheduled := p
	unscheduled.Schedule = "" // a project without a schedule has no periodic rescan
	if err := s.ScheduleRescan(unscheduled); err != nil {
		s.log.ErrorContext(ctx, "project deleted, but its rescans were not unscheduled", slog.String("project", p.Name), slog.Any("error", err))
	}
	s.log.InfoContext(ctx, "project deleted", slog.String("project", p.Name), slog.String("id", p.ID))
	return p, nil
}

// RotateWebhookSecret makes secret (in clear) the webhook secret of the
// project with the name. With grace above zero, the secret it replaces
// keeps working that long; previousUntil is then when it stops (zero when
// it stopped at once, or the project had none).
func (s *Service) RotateWebhookSecret(ctx context.Context, name, secret string, grace time.Duration) (previousUntil time.Time, err error) {
	p, err := s.store.GetProjectByName(ctx, name)
	if err != nil {
		return time.Time{}, err
	}
	if grace > 0 && p.WebhookSecret != "" {
		previousUntil = now().Add(grace).UTC().Truncate(time.Second)
	}
	if _, err := s.store.RotateWebhookSecret(ctx, p.ID, s.seal.Seal(p.Name, secret), previousUntil); err != nil {
		return time.Time{}, err
	}
	s.log.InfoContext(ctx, "webhook secret rotated", slog.String("project", p.Name), slog.Time("previous_valid_until", previousUntil))
	return previousUntil, nil
}

// WebhookSecrets are the project's webhook secret in clear and, through
// a rotation's grace period, the one it replaced ("" for none).
func (s *Service) WebhookSecrets(ctx context.Context, name string) (current, previous string, err error) {
	p, err := s.store.GetProjectByName(ctx, name)
	if err != nil {
		return "", "", err
	}
	if p.WebhookSecret != "" {
		if current, err = s.seal.Open(p.Name, p.WebhookSecret); err != nil {
			return "", "", err
		}
	}
	if p.PreviousWebhookSecret != "" && now().Before(p.PreviousSecretUntil) {
		if previous, err = s.seal.Open(p.Name, p.PreviousWebhookSecret); err != nil {
			return "", "", err
		}
	}
	return current, previous, nil
}

// Policy is a version of the policy of the project with the name; version
// 0 means the latest. ErrNotFound, saying which, when there is none.
func (s *Service) Policy(ctx context.Context, name string, version int) (Project, PolicyVersion, error) {
	p, err := s.store.GetProjectByName(ctx, name)
	if err != nil {
		return Project{}, PolicyVersion{}, err
	}
	pol, err := s.store.GetPolicy(ctx, p.ID, version)
	if errors.Is(err, ErrNotFound) {
		if version > 0 {
			return p, PolicyVersion{}, fmt.Errorf("project %q has no policy version %d: %w", p.Name, version, ErrNotFound)
		}
		return p, PolicyVersion{}, fmt.Errorf("project %q has no policy: its gate uses the default policy: %w", p.Name, ErrNotFound)
	}
	return p, pol, err
}

// SetPolicy makes body the policy of the project with the name: a new
// version, which the gate uses at once, unless body is the latest version
// already (created is false). A body that does not parse is a
// *PolicyError and changes nothing.
func (s *Service) SetPolicy(ctx context.Context, name, body string) (p Project, pol PolicyVersion, created bool, err error) {
	if _, err := ParsePolicy("policy", []byte(body)); err != nil {
		return Project{}, PolicyVersion{}, false, err
	}
	if p, err = s.store.GetProjectByName(ctx, name); err != nil {
		return Project{}, PolicyVersion{}, false, err
	}
	if pol, created, err = s.store.SetPolicy(ctx, p.ID, body); err != nil {
		return Project{}, PolicyVersion{}, false, err
	}
	if created {
		s.log.InfoContext(ctx, "new policy version", slog.String("project", p.Name), slog.Int("version", pol.Version))
	}
	return p, pol, created, nil
}

// CreateWaiver stores a waiver of the project w.ProjectID names (by ID).
func (s *Service) CreateWaiver(ctx context.Context, w ProjectWaiver) (ProjectWaiver, error) {
	return s.store.CreateWaiver(ctx, w)
}

// Waiver is the waiver with the ID and the name of its project.
func (s *Service) Waiver(ctx context.Context, id string) (w ProjectWaiver, project string, err error) {
	if w, err = s.store.GetWaiver(ctx, id); err != nil {
		return ProjectWaiver{}, "", err
	}
	project = w.ProjectID
	if p, err := s.store.GetProject(ctx, w.ProjectID); err == nil {
		project = p.Name
	}
	return w, project, nil
}

// ListWaivers pages through a project's waivers, oldest first.
func (s *Service) ListWaivers(ctx context.Context, projectID string, p Page) ([]ProjectWaiver, string, error) {
	return s.store.ListWaiverPage(ctx, projectID, p)
}

// DeleteWaiver deletes the waiver with the ID.
func (s *Service) DeleteWaiver(ctx context.Context, id string) error {
	return s.store.DeleteWaiver(ctx, id)
}

// StatedFinding is a tracked finding with its state now: FindingOpen,
// FindingFixed or FindingWaived.
type StatedFinding struct {
	TrackedFinding
	State string
}

// Findings pages through the tracked findings of project p, newest first,
// in the state given ("" for all). Open and waived are told apart with
// the waivers in force now, so a page is filled by reading the store's
// pages of unfixed findings until it is full. ErrInvalid for an unknown
// state.
func (s *Service) Findings(ctx context.Context, p Project, state string, limit int, cursor string) ([]StatedFinding, string, error) {
	limit = min(max(limit, 0), MaxFindingLimit)
	if limit == 0 {
		limit = DefaultFindingLimit
	}
	f := FindingFilter{ProjectID: p.ID, Limit: limit, Cursor: cursor}
	switch state {
	case "":
	case FindingFixed:
		f.Fixed = new(true)
	case FindingOpen, FindingWaived:
		f.Fixed = new(false)
	default:
		return nil, "", fmt.Errorf("%w: state %q: want open, fixed or waived", ErrInvalid, state)
	}
	waivers, err := s.ActiveWaivers(ctx, p)
	if err != nil {
		return nil, "", err
	}
	out := make([]StatedFinding, 0, limit)
	for {
		page, more, err := s.store.ListFindings(ctx, f)
		if err != nil {
			return nil, "", err
		}
		waived := WaivedFindings(page, waivers)
		for i, tf := range page {
			st := FindingOpen
			switch {
			case tf.Fixed != nil:
				st = FindingFixed
			case waived[i]:
				st = FindingWaived
			}
			if state != "" && st != state {
				continue
			}
			out = append(out, StatedFinding{TrackedFinding: tf, State: st})
			if len(out) == limit {
				next := ""
				if i < len(page)-1 || more != "" {
					next = s.store.FindingCursor(tf.ID)
				}
				return out, next, nil
			}
		}
		if more == "" {
			return out, "", nil
		}
		f.Cursor = more
	}
}

// Scan is the scan with the ID and the name of its project ("" for an
// image scan outside any project).
func (s *Service) Scan(ctx context.Context, id string) (sc Scan, project string, err error) {
	if sc, err = s.store.GetScan(ctx, id); err != nil {
		return Scan{}, "", err
	}
	if sc.ProjectID != "" {
		p, err := s.store.GetProject(ctx, sc.ProjectID)
		if err != nil {
			return Scan{}, "", err
		}
		project = p.Name
	}
	return sc, project, nil
}

// ListScans pages through scans newest first, with the names of their
// projects by project ID.
func (s *Service) ListScans(ctx context.Context, f ScanFilter) (scans []Scan, next string, projects map[string]string, err error) {
	if scans, next, err = s.store.ListScans(ctx, f); err != nil {
		return nil, "", nil, err
	}
	ids := make([]string, 0, len(scans))
	for _, sc := range scans {
		if sc.ProjectID != "" {
			ids = append(ids, sc.ProjectID)
		}
	}
	if projects, err = s.store.ProjectNames(ctx, ids); err != nil {
		return nil, "", nil, err
	}
	return scans, next, projects, nil
}

// OpenBlob opens a blob of a scan's artifacts (ScanArtifacts names them)
// and says its size (-1 when unknown).
func (s *Service) OpenBlob(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	rc, err := s.blobs.Open(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	size, err := s.blobs.Size(ctx, key)
	if err != nil {
		size = -1
	}
	return rc, size, nil
}
