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
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return Project{}, fmt.Errorf("%w: project name is empty", ErrInvalid)
	}
	p.ID = newID()
	p.CreatedAt = now()
	_, err := d.exec(ctx, "INSERT INTO projects ("+projectCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		p.ID, p.Name, p.RepoURL, p.DefaultBranch, nullString(p.WebhookSecret), p.Schedule, d.timeArg(p.CreatedAt))
	if isUniqueViolation(err) {
		return Project{}, fmt.Errorf("%w: a project named %q exists", ErrConflict, p.Name)
	}
	if err != nil {
		return Project{}, fmt.Errorf("store: create project %q: %w", p.Name, err)
	}
	return p, nil
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
