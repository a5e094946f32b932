package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

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
	CreatedAt     time.Time
}

// Policy is one version of a project's gate policy.
type Policy struct {
	ProjectID string
	Version   int // 1, 2, … per project
	Body      string
	CreatedAt time.Time
}

// newID returns a new row ID: a UUIDv7, whose text order is creation order.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

const projectCols = "id, name, repo_url, default_branch, webhook_secret, schedule, created_at"

func scanProject(row interface{ Scan(...any) error }) (Project, error) {
	var p Project
	err := row.Scan(&p.ID, &p.Name, &p.RepoURL, &p.DefaultBranch, textCol{&p.WebhookSecret}, &p.Schedule, timeCol{&p.CreatedAt})
	return p, err
}

// CreateProject stores a new project and returns it with its ID and
// creation time set. The name must be unique (ErrConflict) and not empty
// (ErrInvalid).
func (d *DB) CreateProject(ctx context.Context, p Project) (Project, error) {
	out, err := d.CreateProjectWith(ctx, NewProject{Project: p})
	return out.Project, err
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

// CreateProjectWith stores a project, its forge and its first policy in
// one transaction: when any write fails, none is kept.
func (d *DB) CreateProjectWith(ctx context.Context, n NewProject) (CreatedProject, error) {
	p := n.Project
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return CreatedProject{}, fmt.Errorf("%w: project name is empty", ErrInvalid)
	}
	if n.ForgeURL != "" && n.ForgeToken == "" {
		return CreatedProject{}, fmt.Errorf("%w: a forge needs a project, an API URL and a token", ErrInvalid)
	}
	if p.ID == "" {
		p.ID = newID()
	}
	p.CreatedAt = now()
	fail := func(err error) (CreatedProject, error) {
		return CreatedProject{}, fmt.Errorf("store: create project %q: %w", p.Name, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, d.rebind("INSERT INTO projects ("+projectCols+") VALUES (?, ?, ?, ?, ?, ?, ?)"),
		p.ID, p.Name, p.RepoURL, p.DefaultBranch, nullString(p.WebhookSecret), p.Schedule, d.timeArg(p.CreatedAt))
	if isUniqueViolation(err) {
		return CreatedProject{}, fmt.Errorf("%w: a project named %q exists", ErrConflict, p.Name)
	}
	if err != nil {
		return fail(err)
	}
	if n.ForgeURL != "" {
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO project_forges (project_id, api_url, token, created_at) VALUES (?, ?, ?, ?)"),
			p.ID, n.ForgeURL, n.ForgeToken, d.timeArg(p.CreatedAt)); err != nil {
			return fail(err)
		}
	}
	out := CreatedProject{Project: p}
	if n.Policy != "" {
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO policies (project_id, version, body, created_at) VALUES (?, 1, ?, ?)"),
			p.ID, n.Policy, d.timeArg(p.CreatedAt)); err != nil {
			return fail(err)
		}
		out.PolicyVersion = 1
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return out, nil
}

// GetProject returns the project with the ID, or ErrNotFound.
func (d *DB) GetProject(ctx context.Context, id string) (Project, error) {
	return getRow(ctx, d, "project", id, scanProject, "SELECT "+projectCols+" FROM projects WHERE id = ?", id)
}

// GetProjectByName returns the project with the name, or ErrNotFound.
func (d *DB) GetProjectByName(ctx context.Context, name string) (Project, error) {
	return getRow(ctx, d, "project", name, scanProject, "SELECT "+projectCols+" FROM projects WHERE name = ?", name)
}

// ListProjects returns all projects ordered by name.
func (d *DB) ListProjects(ctx context.Context) ([]Project, error) {
	return listRows(ctx, d, "projects", scanProject, "SELECT "+projectCols+" FROM projects ORDER BY name")
}

// ProjectSummary is a project as lists show it: with the version of its
// latest policy (0 for none) and its forge's API URL ("" for none).
type ProjectSummary struct {
	Project
	PolicyVersion int
	ForgeURL      string
}

// projectSummaryCols read a ProjectSummary in one query, without a query
// per project.
const projectSummaryCols = projectCols + `,
	(SELECT COALESCE(MAX(version), 0) FROM policies WHERE policies.project_id = projects.id),
	COALESCE((SELECT api_url FROM project_forges WHERE project_forges.project_id = projects.id), '')`

func scanProjectSummary(row rowScanner) (ProjectSummary, error) {
	var p ProjectSummary
	err := row.Scan(&p.ID, &p.Name, &p.RepoURL, &p.DefaultBranch, textCol{&p.WebhookSecret}, &p.Schedule, timeCol{&p.CreatedAt},
		&p.PolicyVersion, &p.ForgeURL)
	return p, err
}

// ListProjectPage returns one page of the projects, oldest first (see
// Page), with their policy versions and forges, and the cursor of the
// next page ("" after the last).
func (d *DB) ListProjectPage(ctx context.Context, p Page) ([]ProjectSummary, string, error) {
	return listPage(ctx, d, "projects", "projects", projectSummaryCols, scanProjectSummary,
		func(s ProjectSummary) string { return s.ID }, p, "")
}

// GetProjectSummary returns the project with the name, with its policy
// version and forge, or ErrNotFound.
func (d *DB) GetProjectSummary(ctx context.Context, name string) (ProjectSummary, error) {
	return getRow(ctx, d, "project", name, scanProjectSummary, "SELECT "+projectSummaryCols+" FROM projects WHERE name = ?", name)
}

// AddPolicy stores body as the next version of the project's policy and
// returns it. ErrNotFound if the project does not exist.
func (d *DB) AddPolicy(ctx context.Context, projectID, body string) (Policy, error) {
	created := now()
	// Two concurrent writers on PostgreSQL may compute the same next
	// version; the loser retries.
	for range 10 {
		var pol Policy
		err := d.writeRow(ctx, `INSERT INTO policies (project_id, version, body, created_at)
			VALUES (?, (SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE project_id = ?), ?, ?)
			RETURNING project_id, version, body, created_at`,
			projectID, projectID, body, d.timeArg(created)).
			Scan(&pol.ProjectID, &pol.Version, &pol.Body, timeCol{&pol.CreatedAt})
		switch {
		case isUniqueViolation(err):
			continue
		case isForeignKeyViolation(err):
			return Policy{}, fmt.Errorf("project %q: %w", projectID, ErrNotFound)
		case err != nil:
			return Policy{}, fmt.Errorf("store: add policy to project %q: %w", projectID, err)
		}
		return pol, nil
	}
	return Policy{}, fmt.Errorf("%w: concurrent policy updates of project %q, try again", ErrConflict, projectID)
}

// GetPolicy returns a version of the project's policy; version 0 means the
// latest. ErrNotFound if there is none.
func (d *DB) GetPolicy(ctx context.Context, projectID string, version int) (Policy, error) {
	q := "SELECT project_id, version, body, created_at FROM policies WHERE project_id = ? AND version = ?"
	args := []any{projectID, version}
	if version == 0 {
		q = "SELECT project_id, version, body, created_at FROM policies WHERE project_id = ? ORDER BY version DESC LIMIT 1"
		args = args[:1]
	}
	var pol Policy
	err := d.queryRow(ctx, q, args...).Scan(&pol.ProjectID, &pol.Version, &pol.Body, timeCol{&pol.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, fmt.Errorf("policy of project %q: %w", projectID, ErrNotFound)
	}
	if err != nil {
		return Policy{}, fmt.Errorf("store: get policy of project %q: %w", projectID, err)
	}
	return pol, nil
}

// ProjectNames maps the IDs of projects to their names in one query;
// IDs of projects that do not exist are left out.
func (d *DB) ProjectNames(ctx context.Context, ids []string) (map[string]string, error) {
	names := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return names, nil
	}
	uniq := make([]any, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	q := "SELECT id, name FROM projects WHERE id IN (?" + strings.Repeat(", ?", len(uniq)-1) + ")"
	rows, err := d.read.QueryContext(ctx, d.rebind(q), uniq...)
	if err != nil {
		return nil, fmt.Errorf("store: project names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("store: project names: %w", err)
		}
		names[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: project names: %w", err)
	}
	return names, nil
}
